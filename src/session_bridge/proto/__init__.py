"""Code generated from proto/ (see tests/test_proto.py); do not edit."""
