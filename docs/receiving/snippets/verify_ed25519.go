package webhooks

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// VerifyEd25519 returns nil when a `v1a,` entry of webhook-signature is signed by publicKey (whpk_...).
func VerifyEd25519(publicKey string, headers http.Header, body []byte) error {
	timestamp, err := strconv.ParseInt(headers.Get("webhook-timestamp"), 10, 64)
	if err != nil || math.Abs(float64(time.Now().Unix()-timestamp)) > 300 {
		return errors.New("timestamp too old or too new")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(publicKey, "whpk_"))
	if err != nil || len(key) != ed25519.PublicKeySize {
		return errors.New("not an ed25519 public key")
	}
	signed := append([]byte(headers.Get("webhook-id")+"."+headers.Get("webhook-timestamp")+"."), body...)
	for _, entry := range strings.Fields(headers.Get("webhook-signature")) {
		version, signature, _ := strings.Cut(entry, ",")
		given, err := base64.StdEncoding.DecodeString(signature)
		if version == "v1a" && err == nil && ed25519.Verify(key, signed, given) {
			return nil
		}
	}
	return errors.New("no valid v1a signature")
}
