package main

const usage = `usage:
  entrepot serve [--config FILE] [--listen ADDR] [--data DIR] [--prefetch N]
                 [--max-size SIZE] [--admin-listen ADDR] [--upstream NAME=URL]...
  entrepot ls [--json] [REPOSITORY]            what the cache holds
  entrepot warm [--platform OS/ARCH]... IMAGE...  fetch images ahead of their pulls
  entrepot freeze IMAGE:TAG                    keep a tag on the digest it has now
  entrepot unfreeze IMAGE:TAG                  let it follow its upstream again
  entrepot purge IMAGE[:TAG|@DIGEST]|REPOSITORY  drop what the cache holds of it
  entrepot version

ls, warm, freeze, unfreeze and purge talk to a running server's admin API:
  --admin URL   default http://127.0.0.1:5001; the token from ENTREPOT_ADMIN_TOKEN
Run "entrepot COMMAND --help" for a command's own help.`

// commandHelp is each admin command's --help.
var commandHelp = map[string]string{
	"ls": `usage: entrepot ls [--admin URL] [--json] [REPOSITORY|PATTERN]
Lists the cached repositories, tags with digests, sizes, when last pulled,
and which are pinned or frozen. REPOSITORY is normalised as docker does
(nginx is docker.io/library/nginx); a PATTERN may hold *.`,
	"warm": `usage: entrepot warm [--admin URL] [--platform OS/ARCH]... IMAGE...
Fetches images through the running cache, so that their first pull is
local: tags are revalidated, and only what the cache does not hold is
downloaded. A tag may be a pattern (docker.io/library/nginx:1.27.*).
--platform picks platforms of an index (default: all).`,
	"freeze": `usage: entrepot freeze [--admin URL] IMAGE:TAG
Keeps TAG on the digest it has now (fetched first if needed): every pull
gets that digest, with no upstream request, until "entrepot unfreeze".`,
	"unfreeze": `usage: entrepot unfreeze [--admin URL] IMAGE:TAG
Lets a frozen tag follow its upstream again; the next pull revalidates it.`,
	"purge": `usage: entrepot purge [--admin URL] IMAGE[:TAG|@DIGEST] | REPOSITORY
Drops what the cache holds of an image, a tag, a manifest or a whole
repository: its tags, manifests, and the blobs nothing else needs. The next
pull fetches afresh.`,
}
