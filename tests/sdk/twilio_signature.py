"""Twilio's official RequestValidator (PyPI `twilio`) on cases read as JSON from stdin:
[{"token", "url", "params": [[name, value], ...], "signature"?, "body"?, "algorithm"?}]. Prints, per case, the
SDK's own signature for (url, params) and whether it accepts the given signature."""
import json
import sys

from twilio.request_validator import RequestValidator

class MultiDict(dict):
    """Repeated form names, as Flask's MultiDict gives them to the SDK (`getall`)."""

    def __getitem__(self, key):
        return dict.__getitem__(self, key)[0]

    def getall(self, key):
        return dict.__getitem__(self, key)


out = []
for case in json.load(sys.stdin):
    v = RequestValidator(case["token"])
    flat = MultiDict()
    for name, value in case["params"]:
        dict.setdefault(flat, name, []).append(value)
    alg = case.get("algorithm")
    if alg:
        ok = v.validate(case["url"], flat, case.get("signature", ""), algorithm=alg)
        sig = v.compute_signature(case["url"], flat, algorithm=alg)
    elif "body" in case:
        ok = v.validate(case["url"], case["body"], case.get("signature", ""))
        sig = v.compute_signature(case["url"], {})
    else:
        ok = v.validate(case["url"], flat, case.get("signature", ""))
        sig = v.compute_signature(case["url"], flat)
    out.append({"signature": sig, "valid": bool(ok)})
print(json.dumps(out))
