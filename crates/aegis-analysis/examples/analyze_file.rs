//! Print the incidents of a captured snapshot: `cargo run -p aegis-analysis --example analyze_file -- FILE`.
fn main() {
    let path = std::env::args().nth(1).expect("usage: analyze_file FILE");
    let text = std::fs::read_to_string(&path).expect("readable file");
    let snapshot = aegis_analysis::Snapshot::from_text(&text).expect("a kubectl List");
    for i in aegis_analysis::analyze(&snapshot) {
        println!(
            "{} {} {} [{}] conf {:.2}\n  cause: {}\n  fix: {} — {}",
            i.severity,
            i.category,
            i.resource,
            i.fix.action.kind(),
            i.confidence,
            i.root_cause,
            serde_json::to_string(&i.fix.action).unwrap(),
            i.fix.summary
        );
        for e in &i.evidence {
            println!("  - {e}");
        }
    }
}
