const crypto = require("node:crypto");

// Throws unless a `v1,` entry of webhook-signature matches. `headers` has lower-case names; `body` is
// the raw request body as a Buffer (parse the JSON only after verifying it).
function verify(secret, headers, body) {
  const timestamp = Number(headers["webhook-timestamp"]);
  if (!(Math.abs(Date.now() / 1000 - timestamp) <= 300)) throw new Error("timestamp too old or too new");
  // A whsec_ secret's key is its base64 part; a custom secret's key is its UTF-8 bytes.
  const key = secret.startsWith("whsec_") ? Buffer.from(secret.slice(6), "base64") : Buffer.from(secret, "utf8");
  const signed = Buffer.concat([Buffer.from(`${headers["webhook-id"]}.${headers["webhook-timestamp"]}.`), body]);
  const expected = crypto.createHmac("sha256", key).update(signed).digest();
  for (const entry of headers["webhook-signature"].split(" ")) {
    const [version, signature] = entry.split(",");
    const given = Buffer.from(signature ?? "", "base64");
    if (version === "v1" && given.length === expected.length && crypto.timingSafeEqual(given, expected)) return;
  }
  throw new Error("no valid v1 signature");
}

module.exports = { verify };
