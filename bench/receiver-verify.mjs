// Times @upstash/qstash's Receiver.verify (the check QStash users run in
// process today) on one token and body, so bench/compare.sh can print it next
// to signet's in-process verify and gRPC round trip.
//
//   node bench/receiver-verify.mjs TOKEN BODY_FILE [URL]
//
// Keys: SIGNET_BENCH_CURRENT_KEY / SIGNET_BENCH_NEXT_KEY (default: the keys
// benches/verify.rs signs with). Prints one line:
//   node Receiver.verify: median M µs/verify (N verifies/s), best B µs
import { readFileSync } from "node:fs";
import { Receiver } from "@upstash/qstash";

const [token, bodyFile, url] = process.argv.slice(2);
if (!token || !bodyFile) {
  console.error("usage: node receiver-verify.mjs TOKEN BODY_FILE [URL]");
  process.exit(2);
}
const body = readFileSync(bodyFile, "utf8");
const receiver = new Receiver({
  currentSigningKey: process.env.SIGNET_BENCH_CURRENT_KEY ?? "sig_benchCurrent",
  nextSigningKey: process.env.SIGNET_BENCH_NEXT_KEY ?? "sig_benchNext",
});
const request = { signature: token, body, url };

// A wrong token must fail, the right one must pass: the timing is of a real check.
if ((await receiver.verify(request)) !== true) throw new Error("token did not verify");

const batch = Number(process.env.SIGNET_BENCH_BATCH ?? 2000);
const batches = Number(process.env.SIGNET_BENCH_BATCHES ?? 15);
for (let i = 0; i < batch * 2; i++) await receiver.verify(request); // warm-up (JIT)
const perVerify = [];
for (let b = 0; b < batches; b++) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < batch; i++) await receiver.verify(request);
  perVerify.push(Number(process.hrtime.bigint() - start) / batch / 1000);
}
perVerify.sort((a, b) => a - b);
const median = perVerify[Math.floor(perVerify.length / 2)];
console.log(
  `node Receiver.verify: median ${median.toFixed(2)} µs/verify (${Math.round(1e6 / median)} verifies/s), ` +
    `best ${perVerify[0].toFixed(2)} µs, node ${process.version}, @upstash/qstash ` +
    JSON.parse(readFileSync(new URL("./node_modules/@upstash/qstash/package.json", import.meta.url))).version,
);
