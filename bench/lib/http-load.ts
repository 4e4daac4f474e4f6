// Load generator of the push benchmark's logic phase, in its own process so it does not share
// an event loop (or a CPU reading) with the logic process it drives:
//
//   node --import tsx bench/lib/http-load.ts '<json: origin, path, headers, body, status, connections, seconds, warmupS>'
//
// `connections` keep-alive undici connections, each with one request outstanding, send the same
// POST back to back: warmupS seconds untimed, then a line {"measuring":true}, then `seconds`
// measured, then one line {"requests":n,"accepted":n,"statuses":{…},"seconds":s,"cpuSeconds":s,
// "firstError":"…"}. "accepted" = answered with `status`.
import { Pool } from 'undici';

interface LoadConfig {
  origin: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  status: number;
  connections: number;
  seconds: number;
  warmupS: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as LoadConfig;
const http = new Pool(config.origin, { connections: config.connections });
let measuring = false;
let stopAt = performance.now() + config.warmupS * 1000;
let requests = 0;
let accepted = 0;
let firstError = '';
const statuses: Record<string, number> = {};

async function lane(): Promise<void> {
  while (performance.now() < stopAt) {
    try {
      const res = await http.request({ path: config.path, method: 'POST', headers: config.headers, body: config.body });
      const text = await res.body.text();
      if (!measuring) continue;
      requests++;
      statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
      if (res.statusCode === config.status) accepted++;
      else firstError ||= `HTTP ${res.statusCode}: ${text.slice(0, 200)}`;
    } catch (err) {
      if (measuring) {
        requests++;
        statuses.error = (statuses.error ?? 0) + 1;
        firstError ||= String(err);
      }
    }
  }
}

const lanes = () => Promise.all(Array.from({ length: config.connections }, lane));
await lanes();
measuring = true;
process.stdout.write(JSON.stringify({ measuring: true }) + '\n');
const cpu0 = process.cpuUsage();
const t0 = performance.now();
stopAt = t0 + config.seconds * 1000;
await lanes();
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
process.stdout.write(JSON.stringify({ requests, accepted, statuses, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, firstError }) + '\n');
await http.close();
process.exit(0);
