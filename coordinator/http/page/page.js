// The coordinator's status page: polls status.json (coordinator/http/status-page.ts) and renders it.
// Served under a strict CSP (same origin, no inline code): the DOM is built with textContent only,
// so no agent id or error text is ever parsed as HTML.
'use strict';
(() => {
  const POLL_MS = 5000;
  const TABLE_ROUNDS = 50;
  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ formatting
  const bytes = (n) => {
    if (n < 1024) return `${n} B`;
    if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
    if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
    return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  };
  const score = (s) => {
    if (s === null || s === undefined) return '-';
    if (!Number.isFinite(s)) return 'inf';
    const pct = (s - 1) * 100;
    return `${s.toFixed(3)} (${pct <= 0 ? '' : '+'}${pct.toFixed(1)} %)`;
  };
  const duration = (seconds) => {
    const t = Math.max(0, Math.round(seconds));
    const d = Math.floor(t / 86400);
    const h = Math.floor((t % 86400) / 3600);
    const m = Math.floor((t % 3600) / 60);
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${m}m`;
    return m ? `${m}m ${t % 60}s` : `${t}s`;
  };
  const relative = (at, now) => {
    if (at === null || at === undefined) return '-';
    const s = (at - now) / 1000;
    return s >= 0 ? `in ${duration(s)}` : `${duration(-s)} ago`;
  };
  const clock = (at) => new Date(at).toISOString().replace('T', ' ').slice(0, 19);
  const phaseOf = (r) => (r.phase === 'fedavg' ? `fedavg ${r.step}` : r.phase);

  // ------------------------------------------------------------------ DOM helpers
  const text = (id, value) => {
    $(id).textContent = value;
  };
  const cell = (value, className) => {
    const td = document.createElement('td');
    td.textContent = value;
    if (className) td.className = className;
    return td;
  };
  /** Replaces a table's body with rows of [text, class] cells; `attrs` sets data-* on each row. */
  const fillTable = (id, rows) => {
    const table = $(id);
    const body = table.tBodies[0];
    body.replaceChildren(
      ...rows.map(({ cells, data, className }) => {
        const tr = document.createElement('tr');
        for (const [k, v] of Object.entries(data)) tr.dataset[k] = String(v);
        if (className) tr.className = className;
        tr.append(...cells.map(([v, c]) => cell(v, c)));
        return tr;
      }),
    );
    table.dataset.rows = String(rows.length);
  };

  // ------------------------------------------------------------------ sections
  function renderHeader(doc) {
    const s = doc.status;
    const f = s.federation || {};
    text('federation', f.id || '-');
    text('key-id', f.keyId || '-');
    const epoch = f.keyEpoch ?? f.epoch;
    text('key-epoch', epoch === undefined || epoch === null ? '-' : String(epoch));
    text('codec', f.codec || '-');
    const b = s.broker;
    text('broker', b ? `${b.url}${b.connected ? '' : ' (disconnected)'}` : 'connecting');
    text('updated', `updated ${clock(doc.generatedAt)} UTC · up ${duration(s.uptimeS)} · refreshed every ${POLL_MS / 1000} s`);
  }

  function renderCards(doc) {
    const s = doc.status;
    text('agents-online', `${s.agents.online} / ${s.agents.known}`);
    text('agents-detail', `${s.agents.eligible} ready for a round; a round needs ${s.federation.minAgents}`);
    const c = s.round;
    if (c) {
      text('current-round', `#${c.round}`);
      text('current-detail', `session ${c.session}, ${phaseOf(c)}: ${c.status}, ${c.updates}/${c.expected} updates, ${c.acks} acks`);
    } else {
      text('current-round', s.done ? 'done' : 'none');
      text('current-detail', s.done ? `all ${s.sessionsDone} session(s) ran` : s.nextRoundAt ? `next round ${relative(s.nextRoundAt, doc.generatedAt)}` : 'waiting for agents');
    }
    const completed = doc.rounds.filter((r) => r.outcome === 'completed').length;
    text('rounds-done', String(doc.total));
    text('rounds-detail', `${completed} of the last ${doc.rounds.length} completed; ${s.sessionsDone} session(s) done`);
    const scored = doc.rounds.filter((r) => r.score !== null && Number.isFinite(r.score));
    if (scored.length > 0) {
      const best = scored.reduce((a, r) => (r.score < a.score ? r : a));
      text('best-score', best.score.toFixed(3));
      text('best-detail', `round ${best.round} (session ${best.session}, ${phaseOf(best)}); latest ${score(scored.at(-1).score)}`);
    } else {
      text('best-score', '-');
      text('best-detail', 'no FedAvg round has reported yet');
    }
    const rejected = Object.entries(s.rejected || {});
    text('rejected', String(rejected.reduce((a, [, n]) => a + n, 0)));
    text('rejected-detail', rejected.length ? rejected.map(([why, n]) => `${why} ${n}`).join(', ') : 'none');
  }

  function renderRounds(doc) {
    const shown = doc.rounds.slice(-TABLE_ROUNDS).reverse();
    text('rounds-shown', doc.total > shown.length ? `(the newest ${shown.length} of ${doc.total})` : `(${doc.total})`);
    fillTable(
      'rounds',
      shown.map((r) => ({
        data: { round: r.round, outcome: r.outcome },
        className: r.outcome === 'completed' ? '' : 'bad',
        cells: [
          [String(r.round), 'num'],
          [String(r.session), 'num'],
          [phaseOf(r)],
          [r.outcome + (r.reason ? `: ${r.reason}` : '')],
          [`${r.participants}/${r.expected}`, 'num'],
          [String(r.acks), 'num'],
          [bytes(r.bytesIn), 'num'],
          [bytes(r.bytesOut), 'num'],
          [clock(r.announcedAt)],
          [((r.closedAt - r.announcedAt) / 1000).toFixed(1), 'num'],
          [score(r.score), 'num'],
        ],
      })),
    );
  }

  function renderAgents(doc) {
    fillTable(
      'agents',
      doc.agents.map((a) => ({
        data: { agent: a.id, online: a.online },
        className: a.online ? '' : 'muted',
        cells: [
          [a.id],
          [a.state + (a.reason ? ` (${a.reason})` : '')],
          [a.online ? 'yes' : 'no'],
          [relative(a.firstSeen, doc.generatedAt)],
          [relative(a.lastSeen, doc.generatedAt)],
          [a.lastRound === null ? '-' : String(a.lastRound), 'num'],
          [a.installed === null ? '-' : String(a.installed), 'num'],
          [String(a.rounds), 'num'],
          [a.lastError || '-'],
        ],
      })),
    );
  }

  // ------------------------------------------------------------------ chart (uPlot)
  let chart = null;
  function chartData(doc) {
    const xs = doc.rounds.map((r) => r.round);
    const ys = doc.rounds.map((r) => (r.score !== null && Number.isFinite(r.score) ? r.score : null));
    return [xs, ys, xs.map(() => 1)];
  }
  function chartWidth() {
    return Math.max(320, $('chart').clientWidth);
  }
  function renderChart(doc) {
    const data = chartData(doc);
    const el = $('chart');
    if (!chart) {
      chart = new uPlot(
        {
          width: chartWidth(),
          height: 280,
          // x: round numbers, whole ticks only; y: from 0, persistence (1) always in view.
          scales: { x: { time: false }, y: { range: (_u, _min, max) => [0, Math.max(1.1, (max ?? 1) * 1.08)] } },
          // uPlot draws after the current task: count the drawn pixels once it has.
          hooks: { draw: [(u) => (el.dataset.painted = String(paintedPixels(u.root)))] },
          axes: [
            { label: 'round', stroke: '#445', grid: { stroke: '#e4e7ee' }, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000], values: (_u, ticks) => ticks.map((t) => String(Math.round(t))) },
            { label: 'loss / persistence loss', stroke: '#445', grid: { stroke: '#e4e7ee' }, size: 60 },
          ],
          series: [
            { label: 'round' },
            { label: 'pooled validation loss vs persistence', stroke: '#2463eb', width: 2, spanGaps: true, points: { size: 6, fill: '#2463eb' }, value: (_u, v) => (v === null ? '-' : v.toFixed(3)) },
            { label: 'persistence', stroke: '#9aa3b5', width: 1, dash: [6, 4], points: { show: false }, value: () => '1' },
          ],
        },
        data,
        el,
      );
      window.addEventListener('resize', () => chart.setSize({ width: chartWidth(), height: 280 }));
    } else {
      chart.setData(data);
    }
    el.dataset.points = String(data[1].filter((v) => v !== null).length);
  }
  /** How many pixels of the plot's canvas are drawn on: a rendered chart has thousands. */
  function paintedPixels(el) {
    const canvas = el.querySelector('canvas');
    if (!canvas || canvas.width === 0 || canvas.height === 0) return 0;
    const px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) n++;
    return n;
  }

  // ------------------------------------------------------------------ polling
  async function refresh() {
    try {
      const res = await fetch('status.json', { cache: 'no-store' });
      if (!res.ok) throw new Error(`status.json answered ${res.status} ${res.statusText}`);
      const doc = await res.json();
      renderHeader(doc);
      renderCards(doc);
      renderRounds(doc);
      renderAgents(doc);
      renderChart(doc);
      $('error').hidden = true;
      document.body.dataset.state = 'loaded';
    } catch (err) {
      $('error').textContent = `cannot refresh: ${err instanceof Error ? err.message : String(err)}; showing the last answer`;
      $('error').hidden = false;
      if (document.body.dataset.state === 'loading') document.body.dataset.state = 'failed';
    }
  }
  void refresh();
  setInterval(() => void refresh(), POLL_MS);
})();
