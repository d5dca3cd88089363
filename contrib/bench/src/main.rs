//! `redo-bench`: see `redo-bench --help` and `contrib/bench/README.md`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match redo_bench::parse_args(&args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{}", redo_bench::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("redo-bench: {e}");
            return ExitCode::from(2);
        }
    };
    match redo_bench::run::run(&opts) {
        Ok(report) => {
            if let Some(path) = &opts.save {
                let saved = redo_bench::json::to_pretty(&redo_bench::report::json(&report))
                    .and_then(|t| std::fs::write(path, t).map_err(|e| e.to_string()));
                if let Err(e) = saved {
                    eprintln!("redo-bench: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            if opts.json {
                match redo_bench::json::to_pretty(&redo_bench::report::json(&report)) {
                    Ok(text) => print!("{text}"),
                    Err(e) => {
                        eprintln!("redo-bench: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print!("{}", redo_bench::report::table(&report));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("redo-bench: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
