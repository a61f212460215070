package identity

import (
	"math"
	"strconv"
	"time"
)

// maxNumericDate is 9999-12-31T23:59:59Z. Larger values cannot be
// meant, and bounding them keeps time arithmetic far from overflow.
const maxNumericDate = 253402300799

type tokenTimes struct {
	iat, nbf, exp time.Time
}

// checkTimes applies the validity rules with one clock reading and one skew:
// exp and iat are required; exp+skew > now; nbf-skew <= now; iat-skew <= now;
// exp-iat <= maxLifetime; now-iat <= maxAge+skew.
func checkTimes(obj jsonObject, now time.Time, skew, maxLifetime, maxAge time.Duration) (tokenTimes, *Error) {
	var tt tokenTimes
	exp, ok, e := numericDate(obj, "exp")
	if e != nil {
		return tt, e
	}
	if !ok {
		return tt, fail(ReasonMissingClaim, "token has no exp")
	}
	iat, ok, e := numericDate(obj, "iat")
	if e != nil {
		return tt, e
	}
	if !ok {
		return tt, fail(ReasonMissingClaim, "token has no iat")
	}
	nbf, hasNBF, e := numericDate(obj, "nbf")
	if e != nil {
		return tt, e
	}
	tt = tokenTimes{iat: iat, nbf: nbf, exp: exp}

	if !exp.Add(skew).After(now) {
		return tt, fail(ReasonTokenExpired, "token expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if hasNBF && nbf.Add(-skew).After(now) {
		return tt, fail(ReasonTokenNotYetValid, "token is not valid before %s", nbf.UTC().Format(time.RFC3339))
	}
	if iat.Add(-skew).After(now) {
		return tt, fail(ReasonTokenNotYetValid, "token issued in the future, at %s", iat.UTC().Format(time.RFC3339))
	}
	if exp.Before(iat) {
		return tt, fail(ReasonInvalidClaim, "exp is before iat")
	}
	if now.Sub(iat) > maxAge+skew {
		return tt, fail(ReasonTokenTooOld, "token issued at %s is older than %s", iat.UTC().Format(time.RFC3339), maxAge)
	}
	if exp.Sub(iat) > maxLifetime {
		return tt, fail(ReasonLifetimeTooLong, "token lifetime %s exceeds %s", exp.Sub(iat), maxLifetime)
	}
	return tt, nil
}

// numericDate reads an RFC 7519 NumericDate: a JSON number of seconds, in
// [0, maxNumericDate], possibly with a fraction. Strings, negative,
// non-finite and out-of-range values are invalid_claim.
func numericDate(obj jsonObject, name string) (time.Time, bool, *Error) {
	raw, ok := obj[name]
	if !ok {
		return time.Time{}, false, nil
	}
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return time.Time{}, true, fail(ReasonInvalidClaim, "%s is not a number", name)
	}
	s := string(raw)
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		if i < 0 || i > maxNumericDate {
			return time.Time{}, true, fail(ReasonInvalidClaim, "%s %s is out of range", name, quote(s))
		}
		return time.Unix(i, 0), true, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > maxNumericDate {
		return time.Time{}, true, fail(ReasonInvalidClaim, "%s %s is out of range", name, quote(s))
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}
