import timeit
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from stetgate.httpsig import ResolvedKey, parse_signature_header, verify_request
from tests.unit.httpsig.signed_requests import BODY, KEY_ID, NOW, TARGET, signed_request

key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
pub = key.public_key()
headers = signed_request(key)
reg = {KEY_ID: ResolvedKey(pub, "ctx")}
n = 5000
t = timeit.timeit(lambda: verify_request("PUT", TARGET, headers, BODY, reg.get, now=NOW), number=n)
params = parse_signature_header(headers["Signature"])
data = b"x"
sig = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
r = timeit.timeit(lambda: pub.verify(sig, data, padding.PKCS1v15(), hashes.SHA256()), number=n)
p = timeit.timeit(lambda: parse_signature_header(headers["Signature"]), number=n)
print(f"verify_request: {t / n * 1e6:.1f} us; bare RSA-2048 verify: {r / n * 1e6:.1f} us; parse: {p / n * 1e6:.1f} us")
