//! scratch
use std::time::Instant;
fn main() {
    for mode in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new()
            .path(dir.path())
            .mode(sled::Mode::HighThroughput)
            .flush_every_ms(None)
            .open()
            .unwrap();
        let t = Instant::now();
        let mut big = sled::Batch::default();
        for i in 0u64..18000 {
            let id = blake3::hash(&i.to_le_bytes());
            match mode {
                0 => big.insert(id.as_bytes().to_vec(), vec![1u8; 400]),
                1 => big.insert(i.to_be_bytes().to_vec(), vec![1u8; 400]),
                2 => big.insert(id.as_bytes().to_vec(), vec![1u8; 8]),
                _ => {
                    big.insert(i.to_be_bytes().to_vec(), vec![1u8; 400]);
                    big.insert(id.as_bytes().to_vec(), vec![1u8; 8])
                }
            }
        }
        db.apply_batch(big).unwrap();
        let a = t.elapsed();
        db.flush().unwrap();
        println!(
            "mode {mode}: apply {:.3} s, total {:.3} s",
            a.as_secs_f64(),
            t.elapsed().as_secs_f64()
        );
    }
}
