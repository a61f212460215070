// Package moto runs moto's server (https://github.com/getmoto/moto), the
// AWS emulator that others wrote and many projects test against, for the
// end-to-end tests: `python -m moto.server` on 127.0.0.1 and a port of its
// own, one process per test, stopped when the test ends. STS, IAM and S3
// answer on its one URL, so AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_STS and
// _IAM) points an SDK at it.
//
// Where test/ststest is the project's own reading of STS, moto is an
// independent one: a mapping that passes against both is less likely to
// fail on its first real exchange. moto is lenient in its own ways (it
// ignores session tags, source identity and session policies when it
// evaluates permissions, and its policy conditions know only
// StringEquals); the tests say what they can observe through it.
//
// The interpreter is OIDC_BRIDGE_MOTO_PYTHON (set by the Makefile's test
// target), else the one scripts/ensure-moto.sh prints. When neither yields
// one that runs moto, the test fails: it is never skipped.
//
// IAM enforcement is off when moto starts, so that a test can create its
// users, roles, policies and buckets with any credentials; EnforceIAM
// switches it on (moto's INITIAL_NO_AUTH_ACTION_COUNT, set to 0 through
// /moto-api/reset-auth). Then every request must be signed with an access
// key moto issued and is allowed only by the caller's IAM policies.
//
// It is for tests only.
package moto
