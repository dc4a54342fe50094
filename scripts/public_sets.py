"""What scripts/language-sets.py and scripts/brand-sets.py share: reading a file of a public
repository's clone at a pinned commit, and flattening a text onto one line. Stdlib only."""
import os
import subprocess


def find_gitdir(repos, repo):
    """The git directory of `owner/name`'s clone under `repos` (`<owner>+<name>`, bare or not),
    or None."""
    base = os.path.join(repos, repo.replace("/", "+"))
    for cand in (os.path.join(base, "repo", ".git"), os.path.join(base, "repo"), base):
        if os.path.isfile(os.path.join(cand, "HEAD")):
            return cand
    return None


def git_show(gitdir, ref, path):
    """The bytes of `path` at `ref`; a CalledProcessError names what could not be read."""
    return subprocess.run(["git", "--git-dir", gitdir, "show", f"{ref}:{path}"],
                          check=True, capture_output=True).stdout


def clean(text):
    """Tabs, CR and LF become spaces, runs of white space one space."""
    return " ".join(text.replace("\t", " ").replace("\r", " ").replace("\n", " ").split())
