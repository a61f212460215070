"""A relying party written with PyJWT that trusts an OIDC issuer.

Used by test/e2e/pyjwt_test.go. It knows only the issuer's URL (argv[1]):
it reads the discovery document at <issuer>/.well-known/openid-configuration
(whose issuer must be that URL, OpenID Connect Discovery 1.0 section 4.3),
takes jwks_uri and id_token_signing_alg_values_supported from it, reports
which of the published keys PyJWT can use, and verifies with jwt.PyJWKClient(jwks_uri), which caches the key set and
fetches it again when a token's kid is not in it.

Requests are read from stdin, one JSON object a line:
{"token": "...", "audience": "..."}; each answer is one JSON line on stdout:
{"ok": true, "kid": "...", "alg": "...", "claims": {...}} or
{"ok": false, "error": "<PyJWT exception class>", "message": "..."}.
Tokens never appear in argv or in the output.
"""

import json
import sys
import urllib.request

import jwt


def fetch_json(url):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.load(resp)


def main():
    issuer = sys.argv[1]
    discovery = fetch_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
    if discovery.get("issuer") != issuer:
        sys.exit("discovery: issuer %r is not the URL it was fetched from (%r)" % (discovery.get("issuer"), issuer))
    algorithms = discovery["id_token_signing_alg_values_supported"]
    jwks = jwt.PyJWKClient(discovery["jwks_uri"])
    # PyJWKSet skips the keys it cannot use: count them against the set.
    published = [k.get("kid") for k in fetch_json(discovery["jwks_uri"])["keys"]]
    usable = [k.key_id for k in jwks.get_jwk_set().keys]
    print(json.dumps({"ready": True, "algorithms": algorithms, "published": published, "usable": usable}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        token = req["token"]
        try:
            header = jwt.get_unverified_header(token)
            key = jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=algorithms,
                audience=req["audience"],
                issuer=discovery["issuer"],
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
            out = {"ok": True, "kid": header.get("kid"), "alg": header.get("alg"), "claims": claims}
        except jwt.PyJWTError as e:
            out = {"ok": False, "error": type(e).__name__, "message": str(e)}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
