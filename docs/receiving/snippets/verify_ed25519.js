const crypto = require("node:crypto");

// Throws unless a `v1a,` entry of webhook-signature is signed by the subscription's public key (whpk_...).
function verify(publicKey, headers, body) {
  const timestamp = Number(headers["webhook-timestamp"]);
  if (!(Math.abs(Date.now() / 1000 - timestamp) <= 300)) throw new Error("timestamp too old or too new");
  const x = Buffer.from(publicKey.replace(/^whpk_/, ""), "base64").toString("base64url");
  const key = crypto.createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x }, format: "jwk" });
  const signed = Buffer.concat([Buffer.from(`${headers["webhook-id"]}.${headers["webhook-timestamp"]}.`), body]);
  for (const entry of headers["webhook-signature"].split(" ")) {
    const [version, signature] = entry.split(",");
    if (version === "v1a" && crypto.verify(null, signed, key, Buffer.from(signature ?? "", "base64"))) return;
  }
  throw new Error("no valid v1a signature");
}

module.exports = { verify };
