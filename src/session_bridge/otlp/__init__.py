"""Facts of the OTLP protocol shared by the receivers and the exporters."""
