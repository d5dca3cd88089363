//! The commands of the one `redo` binary, and which one a run is: the name it was called by.

use crate::error::Error;
use redo_proto::commands::NAMES;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// The client commands, in the order of [`NAMES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Redo,
    Ifchange,
    Ifcreate,
    Always,
    Stamp,
    Whichdo,
    Targets,
    Sources,
    Ood,
    Affects,
    Dot,
    Log,
    Cleanup,
    Depfix,
}

impl Tool {
    /// Every command, in the order of [`NAMES`].
    pub const ALL: [Tool; 14] = [
        Tool::Redo,
        Tool::Ifchange,
        Tool::Ifcreate,
        Tool::Always,
        Tool::Stamp,
        Tool::Whichdo,
        Tool::Targets,
        Tool::Sources,
        Tool::Ood,
        Tool::Affects,
        Tool::Dot,
        Tool::Log,
        Tool::Cleanup,
        Tool::Depfix,
    ];

    pub fn name(self) -> &'static str {
        NAMES[self as usize]
    }

    /// The command called as `program` (argv[0]): by its last path component, as goredo does,
    /// so that `redo-ifchange`, `./redo-ifchange` and `/usr/bin/redo-ifchange` are one command.
    pub fn called_as(program: &OsStr) -> Result<Tool, Error> {
        let bytes = program.as_bytes();
        let base = bytes.rsplit(|&b| b == b'/').next().unwrap_or(bytes);
        Tool::ALL
            .into_iter()
            .find(|t| t.name().as_bytes() == base)
            .ok_or_else(|| Error::UnknownName(String::from_utf8_lossy(base).into_owned()))
    }

    /// Commands that take the build options (-j, -x, -k, ...).
    pub fn builds(self) -> bool {
        matches!(self, Tool::Redo | Tool::Ifchange)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_dispatch() {
        for (t, n) in Tool::ALL.iter().zip(NAMES) {
            assert_eq!(t.name(), n);
            assert_eq!(Tool::called_as(OsStr::new(n)).unwrap(), *t);
            assert_eq!(
                Tool::called_as(OsStr::new(&format!("/x/y/{n}"))).unwrap(),
                *t
            );
        }
        let e = Tool::called_as(OsStr::new("/bin/redo-foo"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'redo-foo'") && e.contains("redo-ifchange, redo-ifcreate"),
            "{e}"
        );
        assert!(Tool::called_as(OsStr::new("")).is_err());
    }
}
