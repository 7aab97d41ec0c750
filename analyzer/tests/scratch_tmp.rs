#[test]
fn all_nfs() {
    for nf in ["fw","nat","lb","cl","pol","psd","nop","bridge","sbridge"] {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../nfs").join(nf);
        match maestro_analyzer::load_nf(&p, &[]) {
            Ok(prog) => println!("{}", prog.config_summary()),
            Err(e) => println!("{nf}: {e}"),
        }
    }
}
