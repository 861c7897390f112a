const crypto = require("node:crypto");

// Throws unless X-Webhook-Signature is t=<ms>,v1=<hex HMAC-SHA256(key, "t:<ms>:<body>")> and fresh
// (lower-case header names; body: the raw bytes as a Buffer, the `payload=...` string for a form).
function verify(secret, headers, body) {
  const fields = Object.fromEntries((headers["x-webhook-signature"] ?? "").split(",").map((part) => part.split("=")));
  if (!/^\d+$/.test(fields.t ?? "") || !(Math.abs(Date.now() - Number(fields.t)) <= 300000)) {
    throw new Error("timestamp missing, too old or too new");
  }
  const key = secret.startsWith("whsec_") ? Buffer.from(secret.slice(6), "base64") : Buffer.from(secret, "utf8");
  const expected = crypto.createHmac("sha256", key).update(Buffer.concat([Buffer.from(`t:${fields.t}:`), body]));
  const wanted = Buffer.from(expected.digest("hex"));
  const given = Buffer.from(fields.v1 ?? "");
  if (given.length !== wanted.length || !crypto.timingSafeEqual(given, wanted)) {
    throw new Error("bad X-Webhook-Signature");
  }
}

module.exports = { verify };
