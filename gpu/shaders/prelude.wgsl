// Common to every graft kernel. Binding 0 is the dispatch's argument
// slice: parameters as 32-bit words, then small host inputs.
@group(0) @binding(0) var<storage, read> arg: array<u32>;

fn argu(i: u32) -> u32 { return arg[i]; }
fn argi(i: u32) -> i32 { return bitcast<i32>(arg[i]); }
fn argf(i: u32) -> f32 { return bitcast<f32>(arg[i]); }

// group_index linearizes a dispatch laid out in two dimensions.
fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }
