// A scripted share cascade for the browser test and the payload capture: a post and `shares`
// shares a second apart, each through share ⌊(i − 1) / 2⌋ (a binary tree of reshares, so the
// cascade is deep), POSTed to /api/v1/events (an XADD). The virality tracker scores it and
// publishes a `virality:update`.
export function cascadeEvents(id, { shares = 60, product = "pulse-phone", platform = "twitter", ageSecs = 90 } = {}) {
  const created = Date.now() - ageSecs * 1000;
  const events = [
    {
      type: "post", id, platform, author: { id: `author-${id}`, followers: 5000 },
      text: "The new #PulsePhone camera is stunning, everyone is sharing this", created_at: new Date(created).toISOString(),
      geo: { city: "Lyon", country: "FR" }, product, channel: "organic",
    },
  ];
  for (let i = 0; i < shares; i++) {
    const share = {
      type: "engagement", id: `${id}:s${i}`, post_id: id, kind: "share",
      at: new Date(created + (i + 1) * 1000).toISOString(), actor_followers: 300,
    };
    if (i > 0) share.via = `${id}:s${Math.floor((i - 1) / 2)}`;
    events.push(share);
  }
  events.push({ type: "engagement", post_id: id, kind: "like", at: new Date(created + 2000).toISOString(), count: 40 });
  return events;
}

/** POSTs the cascade of post `id` to Pulse at `base`. */
export async function postCascade(base, id, options) {
  const res = await fetch(`${base}/api/v1/events`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(cascadeEvents(id, options)),
  });
  if (!res.ok) throw new Error(`cascade ${id}: ${res.status} ${await res.text()}`);
}
