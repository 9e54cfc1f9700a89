// Package abi is the contract between graft's WebAssembly plugin
// (wasm/plugin, built for GOOS=wasip1) and its hosts (native/host): the
// names and signatures of the exported functions, the version both sides
// must agree on, and the msgpack messages a call carries.
//
// # Calling convention
//
// The plugin is a WASI reactor. After instantiation the host calls
// _initialize once, then graft_abi_version, and refuses the plugin unless
// it returns Version. A call then goes:
//
//  1. once, and again whenever a request is larger than the buffer the
//     host knows of: packed = graft_buffer(len(request)), and the guest
//     returns its request buffer, of at least len bytes, as Pack(ptr, cap);
//  2. the host writes the msgpack Request at ptr;
//  3. packed = graft_call(len): the guest decodes and runs the request,
//     and returns its msgpack Response as Pack(respPtr, respLen). If the
//     buffer holds more than KeepBuffer bytes the guest drops it as the
//     call returns, and the host goes back to step 1 for its next
//     request;
//  4. the host copies the response out. The guest keeps it until the next
//     graft_call or until the host calls graft_free, which a host does for
//     large responses it does not want kept around.
//
// So a request of at most KeepBuffer bytes costs one guest call: under
// exact deadlines each guest call also costs the host runtime a goroutine
// that watches the deadline, and every allocation in the guest a run of
// instrumented loop iterations. The guest reads the request only during
// graft_call and keeps no slice of the buffer.
//
// While a call runs the guest may call the host's graft.progress(ptr, len)
// import with a msgpack Progress; a non-zero result asks the guest to stop
// the running operation at the next step boundary. At its safe points the
// guest also calls graft.interrupted(), and stops with CodeInterrupted when
// the host says the call's deadline has passed.
//
// Any change to these rules, to the export signatures or to the meaning of
// an existing message field raises Version; new optional fields do not.
package abi
