//! dist/completions (bash, zsh, fish) and dist/man, rendered from a clap
//! command: each binary's `cli_files_are_current` test fails when the
//! checked-in files differ from it, and `NONSTOP_BLESS=1` writes them
//! (scripts/cli-files). Test code of both binaries, included by path:
//! nonstopctl must not link the library (and with it GStreamer).

use std::path::{Path, PathBuf};

use clap_complete::Shell;

/// Every file of `cmd`'s, by its path under dist/.
fn rendered(mut cmd: clap::Command) -> Vec<(PathBuf, Vec<u8>)> {
    let name = cmd.get_name().to_owned();
    let mut files = Vec::new();
    for (shell, file) in [
        (Shell::Bash, format!("{name}.bash")),
        (Shell::Zsh, format!("_{name}")),
        (Shell::Fish, format!("{name}.fish")),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), &name, &mut buf);
        files.push((Path::new("completions").join(file), buf));
    }
    // A page for the command and one for each subcommand, nested ones too
    // (`nonstopctl-fleet-status.1`: the parent's page lists them); the
    // text after the options (clap's "after help") is the exit status.
    cmd.build();
    let source = format!("{name} {}", cmd.get_version().unwrap_or_default());
    fn all(c: &clap::Command) -> Vec<&clap::Command> {
        std::iter::once(c)
            .chain(c.get_subcommands().flat_map(all))
            .collect()
    }
    for c in all(&cmd) {
        let man = clap_mangen::Man::new(c.clone()).source(&source);
        let mut buf = Vec::new();
        man.render(&mut buf).expect("rendered into memory");
        let page = String::from_utf8(buf).expect("roff is text");
        let page = page.replace(".SH EXTRA\n", ".SH \"EXIT STATUS\"\n");
        files.push((Path::new("man").join(man.get_filename()), page.into_bytes()));
    }
    files
}

/// Compares dist/ with what `cmd` renders (or writes it with
/// `NONSTOP_BLESS=1`); panics naming the stale files.
pub fn check(cmd: clap::Command) {
    let name = cmd.get_name().to_owned();
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist");
    let files = rendered(cmd);
    let bless = std::env::var_os("NONSTOP_BLESS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (path, text) in &files {
        let at = dist.join(path);
        if std::fs::read(&at).ok().as_ref() == Some(text) {
            continue;
        }
        if bless {
            std::fs::create_dir_all(at.parent().expect("in a folder")).expect("dist/ is writable");
            std::fs::write(&at, text).expect("dist/ is writable");
        } else {
            stale.push(path.display().to_string());
        }
    }
    // A page of a command that is gone.
    let ours = |f: &str| f.starts_with(&format!("{name}.")) || f.starts_with(&format!("{name}-"));
    for entry in std::fs::read_dir(dist.join("man"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let f = entry.file_name().to_string_lossy().into_owned();
        if ours(&f) && !files.iter().any(|(p, _)| p.ends_with(&f)) {
            if bless {
                std::fs::remove_file(entry.path()).expect("dist/ is writable");
            } else {
                stale.push(format!("man/{f} (no such command)"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "dist/ is not what {name}'s command line renders: {} (run scripts/cli-files)",
        stale.join(", ")
    );
}
