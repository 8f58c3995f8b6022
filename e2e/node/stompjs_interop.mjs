// Interop check of herald's stomp dialect with @stomp/stompjs over ws:
// ack modes, receipts, heart-beats, unsubscribe. Self-contained: it posts
// its own events through POST /api/events, prints one JSON line per step,
// and exits non-zero on the first failed expectation.
//
//   HERALD_HTTP=http://127.0.0.1:8080 HERALD_KEY=... HERALD_ORG=... node stompjs_interop.mjs
import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';

const http = process.env.HERALD_HTTP;
const key = process.env.HERALD_KEY;
const org = process.env.HERALD_ORG;
const wsURL = http.replace(/^http/, 'ws') + '/websocket?x-auth-scheme=api-token';
const topic = `/topic/change/${org}`;

const log = (step, extra = {}) => console.log(JSON.stringify({ step, ...extra }));
const fail = (why) => { log('fail', { why }); process.exit(1); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// The bound of every wait for something that takes milliseconds on an
// idle machine (e2e's patience): CI runs on a loaded 2-core machine.
const patience = 15000;
const within = (ms, what, p) => {
  let timer;
  const timeout = new Promise(() => { timer = setTimeout(() => fail(`timeout: ${what}`), ms); });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
};

async function post(events) {
  const res = await fetch(`${http}/api/events`, {
    method: 'POST',
    headers: { 'x-auth-apikey': key, 'content-type': 'application/json' },
    body: JSON.stringify(events),
  });
  if (res.status !== 200) fail(`POST /api/events: ${res.status} ${await res.text()}`);
  return (await res.json()).ids;
}

function collector() {
  const got = [];
  let wake = () => {};
  return {
    got,
    push(m) { got.push(m); wake(); },
    async until(n) { while (got.length < n) await new Promise((r) => { wake = r; }); },
  };
}

let closedUnexpectedly = false;
const client = new Client({
  webSocketFactory: () => new WebSocket(wsURL, ['v12.stomp', 'v11.stomp', 'v10.stomp'], { headers: { 'x-auth-apikey': key } }),
  heartbeatIncoming: 1000,
  heartbeatOutgoing: 1000,
  reconnectDelay: 0,
  debug: () => {},
});
client.onWebSocketClose = () => { closedUnexpectedly = true; };
client.onStompError = (f) => fail(`ERROR frame: ${f.headers.message} ${f.body}`);

const connected = new Promise((resolve) => { client.onConnect = resolve; });
client.activate();
const frame = await within(patience, 'CONNECTED', connected);
if (frame.headers.version !== '1.2') fail(`negotiated version ${frame.headers.version}`);
if (client.webSocket.protocol !== 'v12.stomp') fail(`sub-protocol ${client.webSocket.protocol}`);
log('connected', { version: frame.headers.version, heartBeat: frame.headers['heart-beat'], protocol: client.webSocket.protocol });

// Three subscriptions on the org topic, one per ack mode, each confirmed by a receipt.
const auto = collector(), individual = collector(), cumulative = collector();
const subscribe = async (id, ack, c) => {
  const receipt = `r-${id}`;
  const p = new Promise((r) => client.watchForReceipt(receipt, r));
  const sub = client.subscribe(topic, (m) => c.push(m), { id, ack, receipt });
  await within(patience, `receipt ${receipt}`, p);
  return sub;
};
const subAuto = await subscribe('auto-0', 'auto', auto);
await subscribe('ind-0', 'client-individual', individual);
await subscribe('cum-0', 'client', cumulative);
log('subscribed');

const n = 20;
const events = Array.from({ length: n }, (_, i) => ({
  entity: 'POLICY_ALERT', type: 'CREATE', entityUuid: `alert-${i}`, deviceUuid: 'cam-1',
  policyAlertTriggers: ['MOTION_HUMAN'], textDescription: `event ${i}`,
}));
const ids = await post(events);
await within(patience, 'all messages', Promise.all([auto.until(n), individual.until(n), cumulative.until(n)]));
for (const [name, c] of [['auto', auto], ['individual', individual], ['cumulative', cumulative]]) {
  const got = c.got.map((m) => m.headers['message-id']);
  if (JSON.stringify(got) !== JSON.stringify(ids)) fail(`${name}: message ids ${got} != ${ids}`);
  c.got.forEach((m, i) => {
    const body = JSON.parse(m.body);
    if (body.entityUuid !== `alert-${i}` || body.id !== ids[i]) fail(`${name}: body ${m.body}`);
    if (m.headers.destination !== topic) fail(`${name}: destination ${m.headers.destination}`);
  });
}
if (auto.got[0].headers.ack !== undefined) fail('auto subscription got an ack header');
if (!individual.got[0].headers.ack) fail('client-individual subscription got no ack header');
log('received', { n, ids: [ids[0], ids[n - 1]] });

// client-individual: ACK every message, with a receipt on the last one.
for (const [i, m] of individual.got.entries()) {
  if (i < n - 1) m.ack(); else {
    const p = new Promise((r) => client.watchForReceipt('ack-last', r));
    m.ack({ receipt: 'ack-last' });
    await within(patience, 'ACK receipt', p);
  }
}
// client (cumulative): one ACK for the last message settles all of them; NACK is accepted too.
{
  const p = new Promise((r) => client.watchForReceipt('ack-cum', r));
  cumulative.got[n - 1].ack({ receipt: 'ack-cum' });
  await within(patience, 'cumulative ACK receipt', p);
}
log('acked');

// Unsubscribe auto-0; a later event reaches only the other two.
{
  const p = new Promise((r) => client.watchForReceipt('unsub', r));
  subAuto.unsubscribe({ receipt: 'unsub' });
  await within(patience, 'UNSUBSCRIBE receipt', p);
}
const [later] = await post([{ entity: 'DEVICE_CONFIG', type: 'UPDATE', entityUuid: 'cfg-1', deviceUuid: 'cam-1' }]);
await within(patience, 'message after unsubscribe', Promise.all([individual.until(n + 1), cumulative.until(n + 1)]));
await sleep(300);
if (auto.got.length !== n) fail(`unsubscribed auto-0 still received ${auto.got.length - n} message(s)`);
if (individual.got[n].headers['message-id'] !== later) fail('wrong message after unsubscribe');
individual.got[n].nack();
cumulative.got[n].ack();
log('unsubscribed');

// Idle for several heart-beat periods: stompjs drops a connection whose
// server sends nothing within twice the interval, so staying connected
// proves the server's heart-beats; the server likewise keeps ours.
await sleep(3500);
if (closedUnexpectedly || !client.connected) fail('connection dropped while idle: heart-beats not working');
log('heartbeats', { idleMs: 3500 });

// DISCONNECT with a receipt (stompjs waits for it).
client.onWebSocketClose = () => {};
await within(patience, 'disconnect', client.deactivate());
log('done');
process.exit(0);
