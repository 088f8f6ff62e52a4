//! Glob patterns and names of any bytes: matching and compiling never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logtail_core::file::discovery::component_matches;
use logtail_core::file::{PathMatcher, PathsSpec};

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0xff).unwrap_or(data.len());
    let (pattern, name) = data.split_at(split);
    let _ = component_matches(pattern, name);
    let text = String::from_utf8_lossy(pattern).into_owned();
    let mut spec = PathsSpec::new(vec![text.clone()]);
    spec.max_dir_search_depth = name.len() as u32;
    spec.exclude_file_paths = vec![text.clone()];
    spec.exclude_files = vec![text.replace('/', "")];
    spec.exclude_dirs = vec![text];
    if let Ok(m) = PathMatcher::new(&spec) {
        let _ = m.matches(std::path::Path::new(&*String::from_utf8_lossy(name)));
    }
});
