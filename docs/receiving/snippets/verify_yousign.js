const crypto = require("node:crypto");

// Throws unless X-Yousign-Signature-256 is sha256=<hex HMAC-SHA256(key, body)> (lower-case header names).
function verify(secret, headers, body) {
  const key = secret.startsWith("whsec_") ? Buffer.from(secret.slice(6), "base64") : Buffer.from(secret, "utf8");
  const expected = Buffer.from("sha256=" + crypto.createHmac("sha256", key).update(body).digest("hex"));
  const given = Buffer.from(headers["x-yousign-signature-256"] ?? "");
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
    throw new Error("bad X-Yousign-Signature-256");
  }
}

module.exports = { verify };
