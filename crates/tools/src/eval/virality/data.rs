//! Cascades with their truth: from the generator, from a file of JSON lines, or from a folder of
//! Twitter propagation trees (the Twitter15/16 format of Ma, Gao and Wong, ACL 2017).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::generate::{Generator, GeneratorOptions};
use crate::models::{EngagementKind, Event, Platform};
use crate::virality::cascade::{ShareNode, ShareTree, ROOT};
use crate::virality::unix_seconds;

pub use crate::virality::fit::TrueCascade;

/// Generates `posts` posts with `seed` and runs the generator until each of their cascades
/// has ended, keeping their shares.
pub fn generate(seed: u64, posts: usize) -> Vec<TrueCascade> {
    let mut generator = Generator::new(GeneratorOptions {
        seed,
        posts_per_sec: 0.5,
        engagements: true,
        id_prefix: format!("v{seed}-"),
        // No post after the last one kept, so the run ends with the last cascade.
        max_posts: Some(posts as u64),
        ..GeneratorOptions::default()
    });
    let mut index: HashMap<String, usize> = HashMap::with_capacity(posts);
    let mut cascades: Vec<(TrueCascade, ShareTree)> = Vec::with_capacity(posts);
    let mut finished = 0usize;
    let mut emitted = 0usize;
    while finished < posts {
        match generator.next_event() {
            Event::Post(p) => {
                if emitted < posts {
                    emitted += 1;
                    index.insert(p.id.clone(), cascades.len());
                    cascades.push((
                        TrueCascade {
                            id: p.id,
                            platform: Some(p.platform),
                            author_followers: p.author.followers,
                            created_at: unix_seconds(p.created_at),
                            shares: Vec::new(),
                            prior: None,
                        },
                        ShareTree::new(usize::MAX),
                    ));
                }
            }
            Event::Engagement(e) => {
                if e.kind == EngagementKind::Share {
                    if let Some(&i) = index.get(&e.post_id) {
                        cascades[i].1.add(
                            e.id.as_deref(),
                            e.via.as_deref(),
                            unix_seconds(e.at),
                            e.actor_followers,
                            e.count.unwrap_or(1),
                        );
                    }
                }
            }
            Event::Delete(_) => {}
        }
        for (id, _) in generator.take_finished_cascades() {
            if index.contains_key(&id) {
                finished += 1;
            }
        }
    }
    cascades
        .into_iter()
        .map(|(mut c, tree)| {
            c.shares = tree.nodes().to_vec();
            c
        })
        .collect()
}

/// Reads cascades from `path`: a folder of propagation trees (see [`read_trees`], with what
/// its cleaning dropped) or a file of JSON lines (see [`read_json_lines`]).
pub fn read(
    path: &Path,
    horizon_s: f64,
) -> anyhow::Result<(Vec<TrueCascade>, Option<TreeCleaning>)> {
    if path.is_dir() {
        let (cascades, cleaning) = read_trees(path, horizon_s, usize::MAX)?;
        Ok((cascades, Some(cleaning)))
    } else {
        Ok((read_json_lines(path)?, None))
    }
}

#[derive(serde::Deserialize)]
struct FileCascade {
    id: String,
    #[serde(default)]
    platform: Option<String>,
    #[serde(default)]
    author_followers: Option<u64>,
    #[serde(default)]
    created_at: Option<f64>,
    shares: Vec<(f64, Option<u64>, i64)>,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

/// A cascade of a JSON-lines file with its optional `author` and `text`, which the reach
/// forecast's evaluation reads.
pub struct AuthoredLine {
    pub cascade: TrueCascade,
    pub author: Option<String>,
    pub text: Option<String>,
    /// `author_followers` as the file gives it (0 is a count, absent is unknown).
    pub followers: Option<u64>,
}

/// Reads a file of cascades, one JSON object per line:
///
/// ```json
/// {"id": "post-1", "platform": "twitter", "author_followers": 1200, "created_at": 1420070400,
///  "shares": [[12.5, 300, -1], [40.0, 80, 0], [95.2, 15000, 1]]}
/// ```
///
/// where each share is `[seconds after the post, sharer's followers or null, parent]` and
/// `parent` is the index of the share it came through in the same list, or -1 for the post
/// itself. `platform`, `author_followers` and `created_at` (Unix seconds) are optional.
pub fn read_json_lines(path: &Path) -> anyhow::Result<Vec<TrueCascade>> {
    Ok(read_authored_json_lines(path)?
        .into_iter()
        .map(|l| l.cascade)
        .collect())
}

/// [`read_json_lines`], keeping each line's `author` and `text` (both optional).
pub fn read_authored_json_lines(path: &Path) -> anyhow::Result<Vec<AuthoredLine>> {
    let mut out = Vec::new();
    let located = |n| format!("{}:{n}: not a cascade", path.display());
    for line in crate::eval::json_lines(path, located)? {
        let (_, c): (usize, FileCascade) = line?;
        let created_at = c.created_at.unwrap_or(0.0);
        let len = c.shares.len();
        let shares = c
            .shares
            .iter()
            .map(|&(t, followers, parent)| ShareNode {
                at: created_at + t,
                followers,
                parent: if parent < 0 || parent as usize >= len {
                    ROOT
                } else {
                    parent as u32
                },
                weight: 1,
            })
            .collect();
        out.push(AuthoredLine {
            cascade: TrueCascade {
                id: c.id,
                platform: c.platform.as_deref().and_then(Platform::parse),
                author_followers: c.author_followers.unwrap_or(0),
                created_at,
                shares: in_time_order(shares),
                prior: None,
            },
            author: c.author,
            text: c.text,
            followers: c.author_followers,
        });
    }
    Ok(out)
}

/// Sorts shares by time, re-indexing parents; a parent that comes after its child becomes the
/// post itself.
fn in_time_order(shares: Vec<ShareNode>) -> Vec<ShareNode> {
    let len = shares.len();
    let mut order: Vec<usize> = (0..len).collect();
    order.sort_by(|&a, &b| shares[a].at.total_cmp(&shares[b].at));
    let mut new_index = vec![0u32; len];
    for (new, &old) in order.iter().enumerate() {
        new_index[old] = new as u32;
    }
    order
        .iter()
        .enumerate()
        .map(|(new, &old)| {
            let mut s = shares[old];
            if s.parent != ROOT {
                let p = new_index[s.parent as usize];
                s.parent = if (p as usize) < new { p } else { ROOT };
            }
            s
        })
        .collect()
}

/// Twitter's epoch in the ids it issues, in milliseconds.
const TWITTER_EPOCH_MS: u64 = 1_288_834_974_657;

/// Unix seconds a Twitter id was issued at (ids carry a millisecond timestamp above bit 22).
pub fn twitter_id_time(id: u64) -> f64 {
    ((id >> 22) + TWITTER_EPOCH_MS) as f64 / 1000.0
}

/// What was dropped while reading trees, and why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TreeCleaning {
    pub edges: usize,
    pub repeated_edges: usize,
    pub source_author_again: usize,
    pub repeat_sharers: usize,
    pub negative_delays: usize,
    pub after_horizon: usize,
    pub parents_after_child: usize,
}

/// Reads a folder of propagation trees: `tree/<source tweet id>.txt` (or `<id>.txt` directly
/// in the folder), one edge per line, `['parent user', 'parent tweet', 'delay min'] ->
/// ['user', 'tweet', 'delay min']`, the first from `['ROOT', 'ROOT', '0.0']` to the source.
///
/// Cleaning: a repeated edge counts once; the source's author resharing their own post is not
/// a share; a user who appears more than once shares once, at their earliest delay; delays
/// below zero (the share predates the post) and beyond `horizon_s` are dropped; a share's
/// parent is the parent user's own share when it exists and is not later, else the post.
/// The post's time comes from its id. Reads at most `limit` trees (in file-name order) and
/// counts what the cleaning dropped.
pub fn read_trees(
    dir: &Path,
    horizon_s: f64,
    limit: usize,
) -> anyhow::Result<(Vec<TrueCascade>, TreeCleaning)> {
    let (trees, cleaning) = read_authored_trees(dir, horizon_s, limit)?;
    Ok((trees.into_iter().map(|t| t.cascade).collect(), cleaning))
}

/// A tree read with the user who posted its source.
pub struct AuthoredTree {
    pub cascade: TrueCascade,
    /// The source's user id; empty when the tree has no `ROOT` line.
    pub author: String,
}

/// [`read_trees`], keeping each source's author.
pub fn read_authored_trees(
    dir: &Path,
    horizon_s: f64,
    limit: usize,
) -> anyhow::Result<(Vec<AuthoredTree>, TreeCleaning)> {
    let folder: PathBuf = if dir.join("tree").is_dir() {
        dir.join("tree")
    } else {
        dir.to_path_buf()
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .with_context(|| format!("reading {}", folder.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    files.truncate(limit);
    anyhow::ensure!(
        !files.is_empty(),
        "{} holds no propagation trees (<tweet id>.txt)",
        folder.display()
    );
    let mut cleaning = TreeCleaning::default();
    let mut out = Vec::with_capacity(files.len());
    for path in files {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let id: u64 = stem
            .parse()
            .with_context(|| format!("{}: the name is not a tweet id", path.display()))?;
        out.push(
            parse_tree(stem, id, &text, horizon_s, &mut cleaning)
                .with_context(|| format!("reading {}", path.display()))?,
        );
    }
    Ok((out, cleaning))
}

/// One node of a tree line: user, tweet, delay in minutes.
fn parse_node(text: &str) -> Option<(&str, f64)> {
    let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?;
    let mut parts = inner.split(',').map(|p| p.trim().trim_matches('\''));
    let user = parts.next()?;
    let _tweet = parts.next()?;
    let delay: f64 = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((user, delay))
}

fn parse_tree(
    name: &str,
    id: u64,
    text: &str,
    horizon_s: f64,
    cleaning: &mut TreeCleaning,
) -> anyhow::Result<AuthoredTree> {
    let mut seen_edges = std::collections::HashSet::new();
    let mut source_author: Option<&str> = None;
    // Per user: earliest delay (minutes) and the parent user of that share.
    let mut first: HashMap<&str, (f64, &str)> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (parent, child) = line
            .split_once("->")
            .and_then(|(p, c)| Some((parse_node(p)?, parse_node(c)?)))
            .with_context(|| format!("line {}: not `[..] -> [..]`", n + 1))?;
        cleaning.edges += 1;
        if parent.0 == "ROOT" {
            source_author = Some(child.0);
            continue;
        }
        if !seen_edges.insert(line.trim()) {
            cleaning.repeated_edges += 1;
            continue;
        }
        if Some(child.0) == source_author {
            cleaning.source_author_again += 1;
            continue;
        }
        if child.1 < 0.0 {
            cleaning.negative_delays += 1;
            continue;
        }
        if child.1 * 60.0 > horizon_s {
            cleaning.after_horizon += 1;
            continue;
        }
        match first.get_mut(child.0) {
            Some(known) => {
                cleaning.repeat_sharers += 1;
                if child.1 < known.0 {
                    *known = (child.1, parent.0);
                }
            }
            None => {
                first.insert(child.0, (child.1, parent.0));
            }
        }
    }
    let mut users: Vec<(&str, f64, &str)> = first.iter().map(|(u, (d, p))| (*u, *d, *p)).collect();
    users.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(b.0)));
    let index: HashMap<&str, usize> = users.iter().enumerate().map(|(i, u)| (u.0, i)).collect();
    let created_at = twitter_id_time(id);
    let shares = users
        .iter()
        .enumerate()
        .map(|(i, (_, delay, parent))| {
            let parent = match index.get(parent) {
                Some(&p) if p < i => p as u32,
                Some(_) => {
                    cleaning.parents_after_child += 1;
                    ROOT
                }
                None => ROOT,
            };
            ShareNode {
                at: created_at + delay * 60.0,
                followers: None,
                parent,
                weight: 1,
            }
        })
        .collect();
    Ok(AuthoredTree {
        cascade: TrueCascade {
            id: name.to_string(),
            platform: Some(Platform::Twitter),
            author_followers: 0,
            created_at,
            shares,
            prior: None,
        },
        author: source_author.unwrap_or_default().to_string(),
    })
}

/// Sets each cascade's prior from JSON lines of `id` and `forecast`; answers how many got one.
pub fn set_priors(cascades: &mut [TrueCascade], path: &Path) -> anyhow::Result<usize> {
    #[derive(serde::Deserialize)]
    struct Line {
        id: String,
        forecast: f64,
    }
    let mut priors = HashMap::new();
    let located = |n| format!("{} line {n}: not a prior", path.display());
    for line in crate::eval::json_lines(path, located)? {
        let (n, l): (usize, Line) = line?;
        anyhow::ensure!(
            l.forecast.is_finite(),
            "{} line {n}: forecast is not finite",
            path.display()
        );
        priors.insert(l.id, l.forecast);
    }
    let mut known = 0;
    for c in cascades {
        c.prior = priors.get(&c.id).copied();
        known += usize::from(c.prior.is_some());
    }
    Ok(known)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priors_are_read_by_cascade_id_and_bad_lines_are_refused() {
        let dir = std::env::temp_dir().join(format!("pulse-priors-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cascade = |id: &str| TrueCascade {
            id: id.into(),
            platform: None,
            author_followers: 0,
            created_at: 0.0,
            shares: Vec::new(),
            prior: Some(9.0),
        };
        let mut cascades = vec![cascade("a"), cascade("b")];
        let good = dir.join("good.jsonl");
        std::fs::write(&good, "{\"id\":\"a\",\"forecast\":4.5,\"truth\":5.0}\n\n").unwrap();
        assert_eq!(set_priors(&mut cascades, &good).unwrap(), 1);
        assert_eq!(cascades[0].prior, Some(4.5));
        assert_eq!(
            cascades[1].prior, None,
            "a cascade without a line has no prior"
        );
        let bad = dir.join("bad.jsonl");
        std::fs::write(&bad, "{\"id\":\"a\",\"forecast\":4.5}\n{\"id\":\"b\"}\n").unwrap();
        let err = set_priors(&mut cascades, &bad).unwrap_err();
        assert!(format!("{err:#}").contains("line 2"), "{err:#}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn trees_are_cleaned_as_documented() {
        let text = "\
['ROOT', 'ROOT', '0.0']->['10', '500', '0.0']
['10', '500', '0.0']->['11', '501', '2.0']
['10', '500', '0.0']->['11', '501', '2.0']
['11', '501', '2.0']->['12', '502', '5.5']
['10', '500', '0.0']->['10', '500', '1.0']
['10', '500', '0.0']->['13', '503', '-3.0']
['10', '500', '0.0']->['12', '504', '9.0']
['14', '505', '30.0']->['15', '506', '3.0']
['10', '500', '0.0']->['14', '505', '30.0']
['10', '500', '0.0']->['16', '507', '99999.0']
";
        let mut cleaning = TreeCleaning::default();
        let tree = parse_tree("x", 1 << 22, text, 7.0 * 86400.0, &mut cleaning).unwrap();
        assert_eq!(tree.author, "10");
        let c = tree.cascade;
        assert_eq!(
            cleaning,
            TreeCleaning {
                edges: 10,
                repeated_edges: 1,
                source_author_again: 1,
                repeat_sharers: 1,
                negative_delays: 1,
                after_horizon: 1,
                parents_after_child: 1,
            }
        );
        // Users 11 (2 min), 15 (3 min, its parent 14 comes later), 12 (5.5 min via 11), 14.
        let delays: Vec<f64> = c
            .shares
            .iter()
            .map(|s| (s.at - c.created_at) / 60.0)
            .collect();
        assert_eq!(delays, vec![2.0, 3.0, 5.5, 30.0]);
        let parents: Vec<u32> = c.shares.iter().map(|s| s.parent).collect();
        assert_eq!(parents, vec![ROOT, ROOT, 0, ROOT]);
        assert!((c.created_at - (TWITTER_EPOCH_MS + 1) as f64 / 1000.0).abs() < 1e-9);
        assert!(parse_tree("x", 1, "nonsense", 1e9, &mut cleaning).is_err());
    }

    #[test]
    fn json_lines_keep_parents_in_time_order() {
        let shares = vec![
            ShareNode {
                at: 5.0,
                followers: None,
                parent: 1,
                weight: 1,
            },
            ShareNode {
                at: 1.0,
                followers: None,
                parent: ROOT,
                weight: 1,
            },
            ShareNode {
                at: 3.0,
                followers: None,
                parent: 0,
                weight: 1,
            },
        ];
        let sorted = in_time_order(shares);
        let view: Vec<(f64, u32)> = sorted.iter().map(|s| (s.at, s.parent)).collect();
        // The share at 3 s names the one at 5 s as its parent: it becomes direct.
        assert_eq!(view, vec![(1.0, ROOT), (3.0, ROOT), (5.0, 0)]);
    }
}
