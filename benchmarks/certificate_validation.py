import tempfile, timeit
from datetime import UTC, datetime
from pathlib import Path
from stetgate.eidas import CertificateValidator, parse_certificate
from stetgate.eidas.parse import parse_certificate_uncached
from stetgate.eidas.qtsp import init_qtsp, issue_tpp
d = Path(tempfile.mkdtemp()); now = datetime.now(UTC)
init_qtsp(d, ["localhost"], "http://127.0.0.1:8000/crl")
t = issue_tpp(d, "PSDFR-ACPR-12345", "TPP", {"AISP", "CBPII"}, d / "tpp")
pem = t.qwac_pem.read_bytes(); cert = parse_certificate(pem)
v = CertificateValidator.from_folders(d / "trust", d / "crl")
def us(f, n): return f"{timeit.timeit(f, number=n) / n * 1e6:.1f} µs"
print("parse (uncached, PEM):", us(lambda: parse_certificate_uncached(pem), 3000))
print("parse (LRU hit):      ", us(lambda: parse_certificate(pem), 100000))
v.validate(cert, "qwac", now)
print("validate cached:      ", us(lambda: v.validate(cert, "qwac", now), 100000))
def miss(): v.clear_cache(); v.validate(cert, "qwac", now)
print("validate uncached:    ", us(miss, 300))
