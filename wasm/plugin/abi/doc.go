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
//  1. ptr = graft_alloc(len(request)): the guest reserves len bytes of its
//     memory and keeps them alive until freed;
//  2. the host writes the msgpack Request there;
//  3. packed = graft_call(ptr, len): the guest decodes and runs the
//     request, releases its buffer, and returns its msgpack Response as
//     Pack(respPtr, respLen);
//  4. the host copies the response out. The guest keeps it until the next
//     graft_call or until the host passes respPtr to graft_free, which a
//     host does for large responses it does not want kept around.
//
// Two guest calls per request keep the fixed cost of a call low.
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
