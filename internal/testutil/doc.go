// Package testutil holds helpers shared by the module's tests: a scripted
// upstream that speaks exact bytes over loopback TCP, and a leak check for
// goroutines and file descriptors. Only _test.go files import it.
package testutil
