package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
)

// VerifyYousign returns nil when X-Yousign-Signature-256 is sha256=<hex HMAC-SHA256(key, body)>.
func VerifyYousign(secret string, headers http.Header, body []byte) error {
	key := []byte(secret)
	if strings.HasPrefix(secret, "whsec_") {
		var err error
		if key, err = base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_")); err != nil {
			return err
		}
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	expected := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(expected), []byte(headers.Get("X-Yousign-Signature-256"))) {
		return errors.New("bad X-Yousign-Signature-256")
	}
	return nil
}
