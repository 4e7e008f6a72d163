// Package auth authenticates gRPC callers and puts their Identity in the
// call's context (FromContext).
//
// A caller is identified, in this order:
//
//  1. by a bearer token: metadata "authorization: Bearer <token>", checked
//     against the tokens of a Tokens set (a file, hot-reloaded, and/or
//     inline tokens). A token that is present but unknown is refused, even
//     when a client certificate or anonymous access would have let the call in;
//  2. by a verified client certificate (mTLS): the first URI SAN if the
//     certificate has one (SPIFFE style), else the subject common name;
//  3. as the anonymous identity (Name ""), only when Options.AllowAnonymous.
//
// Anything else is UNAUTHENTICATED. Calls to the methods Options.Open names
// (health checks, reflection) are let through without credentials; they
// still carry an identity when the caller presented one.
//
// The package knows nothing of the gateway's services: it must never import
// internal/rpc, internal/httpengine or internal/agentpool. internal/rpc
// imports it to read the identity.
package auth
