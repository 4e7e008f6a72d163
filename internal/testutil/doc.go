// Package testutil holds helpers shared by the module's tests: a scripted
// upstream that speaks exact bytes over loopback TCP, a leak check for
// goroutines and file descriptors, a real squid forward proxy on loopback,
// and a throwaway certificate authority (PKI) that writes PEM files. Only
// _test.go files import it.
package testutil
