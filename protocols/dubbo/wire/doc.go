// Package wire is protogate's own transport for the dubbo protocol: Dubbo
// generic calls ($invoke) over hessian2, built on dubbo-go-hessian2's
// codec, without dubbo-go's client.
//
// Per provider address a Client keeps a few multiplexed TCP connections
// (Options.ConnsPerAddr). Each has one goroutine, its read loop, which
// hands every answer to the call waiting for that request id; callers
// write in turns, sharing one writev when they arrive together. A call
// waits on its context and its pending entry only: no timer or goroutine
// per call. The context's deadline is what the provider is told (the
// timeout attachment, in milliseconds).
//
// Errors are classified by the protocol's response status, the decoded
// exception's Java class and the provider's events, never by words in a
// message: see the Err* sentinels and the error types. NotSent tells when
// a failed call certainly never reached a provider.
//
// Responses bigger than Options.MaxResponseBytes (default 8 MiB) fail as
// soon as their header arrives; requests bigger than MaxRequestBytes are
// not sent. Note that a dubbo-go provider by default neither writes nor
// reads a frame over 1,024,000 bytes (getty's max-msg-len): a bigger
// answer never leaves it, and the call ends at its deadline.
package wire
