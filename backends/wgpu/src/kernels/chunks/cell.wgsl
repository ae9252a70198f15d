// The partial passes of the chunked sums (chunks/mod.rs): which chunk of
// rows and which columns a workgroup sums.

// The share of one workgroup: columns col0.. over rows r0..r1 of chunk
// `chunk`. It depends on the workgroup alone, so that a kernel may return
// on it before a barrier.
struct Cell {
    chunk: u32,
    col0: u32,
    r0: u32,
    r1: u32,
}

// Workgroup g covers chunk g / blocks and the block g % blocks of `width`
// columns; chunks hold `per` rows of `rows`. A cell past the last chunk or
// column is the caller's to skip.
fn chunk_cell(g: u32, blocks: u32, width: u32, per: u32, rows: u32) -> Cell {
    let chunk = g / blocks;
    let r0 = chunk * per;
    return Cell(chunk, (g - chunk * blocks) * width, r0, min(r0 + per, rows));
}
