fn wload(i: u32) -> f32 { return bitcast<f32>(wt[i]); }
