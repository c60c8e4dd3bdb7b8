//! File paths that users give (SQLite connections) and the directory they must stay in.

use std::path::{Component, Path, PathBuf};

/// `path` stays under `root` once `.` and `..` are applied to both (no file system access, so symlinks are not
/// followed: whoever opens the file checks its canonical path as well).
pub fn lexically_inside(path: &Path, root: &Path) -> bool {
    normalize(path).starts_with(normalize(root))
}

fn normalize(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                normal.pop();
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    normal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_dot_cannot_leave_the_root() {
        let root = Path::new("/srv/data");
        assert!(lexically_inside(&root.join("shop.db"), root));
        assert!(lexically_inside(&root.join("sub/../shop.db"), root));
        assert!(!lexically_inside(&root.join("../etc/passwd"), root));
        assert!(!lexically_inside(Path::new("/etc/passwd"), root));
        assert!(lexically_inside(Path::new("data/./x.db"), Path::new("./data")));
        assert!(!lexically_inside(Path::new("/srv/database.db"), root), "a prefix of a name is not a parent");
    }
}
