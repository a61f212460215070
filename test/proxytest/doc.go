// Package proxytest gives the client tests a corporate network in small:
// a private CA, a TLS front that serves local backends under names the CA
// certifies (bridge.test, token.test), and an HTTP CONNECT proxy that
// records every tunnel it is asked for and reaches those names, which
// resolve nowhere else, on the front. A client that reaches a name
// proves that it went through the proxy; a client that completes the TLS
// handshake proves that it trusted the CA.
//
// It does not inspect the tunnelled traffic (the proxy only pipes bytes),
// and it serves no plain-HTTP proxying.
package proxytest
