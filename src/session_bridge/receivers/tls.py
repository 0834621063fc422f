"""TLS for the two listeners, from a receiver's `tls:` block.

Certificates can be replaced without a restart: with `reload_interval` set, the files are
checked at most that often and read again when one changed. The HTTP listener's context
loads the new certificate and key in place (new connections get them); the gRPC server
asks for them at each handshake. A file caught half-written is logged and the certificate
in use kept. A client CA removed from `client_ca_file` stays trusted by HTTP until a
restart (OpenSSL can add trusted CAs to a context, not remove them).
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from session_bridge.receivers.config import TlsConfig

log = logging.getLogger(__name__)

_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


@dataclass
class TlsFiles:
    """A `tls:` block's files, and whether they changed since last read."""

    config: TlsConfig
    _seen: tuple[tuple[int, int, int], ...] = field(default=(), init=False)

    def __post_init__(self) -> None:
        self._seen = self._signature()

    @property
    def paths(self) -> list[Path]:
        names = (self.config.cert_file, self.config.key_file, self.config.client_ca_file)
        return [Path(name).expanduser() for name in names if name]

    def _signature(self) -> tuple[tuple[int, int, int], ...]:
        stats = []
        for path in self.paths:
            try:
                st = os.stat(path)
            except OSError:
                stats.append((0, 0, 0))
            else:
                stats.append((st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(stats)

    def changed(self) -> bool:
        """True once after any file changed (mtime, size or inode: a rename counts)."""
        now = self._signature()
        if now == self._seen:
            return False
        self._seen = now
        return True

    def read(self) -> tuple[bytes, bytes, bytes | None]:
        """(private key, certificate chain, client CA or None), as PEM."""
        cfg = self.config
        ca = Path(cfg.client_ca_file).expanduser().read_bytes() if cfg.client_ca_file else None
        key = Path(cfg.key_file).expanduser().read_bytes()
        return key, Path(cfg.cert_file).expanduser().read_bytes(), ca


def http_context(files: TlsFiles) -> ssl.SSLContext:
    """The HTTP listener's server context; OSError names what could not be loaded."""
    cfg = files.config
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS[cfg.min_version]
    context.set_alpn_protocols(["http/1.1"])  # HTTP/2 is not served on this port
    _load(context, files, "HTTP")
    if cfg.client_ca_file:
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _load(context: ssl.SSLContext, files: TlsFiles, listener: str) -> None:
    cfg = files.config
    try:
        context.load_cert_chain(Path(cfg.cert_file).expanduser(), Path(cfg.key_file).expanduser())
        if cfg.client_ca_file:
            context.load_verify_locations(Path(cfg.client_ca_file).expanduser())
    except (OSError, ssl.SSLError) as exc:
        ca = f" and client CA {cfg.client_ca_file}" if cfg.client_ca_file else ""
        raise OSError(
            f"cannot load the {listener} TLS certificate {cfg.cert_file}"
            f" with key {cfg.key_file}{ca}: {exc}"
        ) from exc


async def reload_http_context(context: ssl.SSLContext, files: TlsFiles) -> None:
    """Until cancelled: load the files into `context` again whenever they change."""
    while True:
        await asyncio.sleep(files.config.reload_interval)
        if not files.changed():
            continue
        try:
            _load(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), files, "HTTP")  # whole, or not at all
            _load(context, files, "HTTP")
        except OSError as exc:
            log.warning("%s; the certificate in use is kept", exc)
        else:
            log.info("HTTP TLS certificate reloaded from %s", files.config.cert_file)


def grpc_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    """The gRPC listener's credentials; OSError names what could not be read."""
    cfg = files.config
    _load(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), files, "gRPC")  # a clear error, not grpc's
    try:
        key, cert, ca = files.read()
    except OSError as exc:
        raise OSError(f"cannot read the gRPC TLS files: {exc}") from exc
    if not cfg.reload_interval:
        return grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
        )
    initial = grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)
    return grpc.dynamic_ssl_server_credentials(
        initial, _GrpcReloader(files).fetch, require_client_authentication=ca is not None
    )


class _GrpcReloader:
    """Called by grpc at each TLS handshake: a new configuration when the files changed
    (checked at most every reload_interval), else None (keep the current one)."""

    def __init__(self, files: TlsFiles) -> None:
        self._files = files
        self._lock = threading.Lock()
        self._next_check = time.monotonic() + files.config.reload_interval

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        with self._lock:
            now = time.monotonic()
            if now < self._next_check:
                return None
            self._next_check = now + self._files.config.reload_interval
            if not self._files.changed():
                return None
            try:
                _load(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), self._files, "gRPC")
                key, cert, ca = self._files.read()
                configuration = grpc.ssl_server_certificate_configuration(
                    [(key, cert)], root_certificates=ca
                )
            except (OSError, ValueError) as exc:
                log.warning("%s; the certificate in use is kept", exc)
                return None
        log.info("gRPC TLS certificate reloaded from %s", self._files.config.cert_file)
        return configuration
