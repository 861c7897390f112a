package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// VerifySubnoto returns nil when X-Webhook-Signature is t=<ms>,v1=<hex HMAC-SHA256(key, "t:<ms>:<body>")>
// and fresh; body is the raw request body (the `payload=...` string for a form).
func VerifySubnoto(secret string, headers http.Header, body []byte) error {
	fields := map[string]string{}
	for _, part := range strings.Split(headers.Get("X-Webhook-Signature"), ",") {
		name, value, _ := strings.Cut(part, "=")
		fields[name] = value
	}
	sentMs, err := strconv.ParseInt(fields["t"], 10, 64)
	if err != nil || math.Abs(float64(time.Now().UnixMilli()-sentMs)) > 300000 {
		return errors.New("timestamp missing, too old or too new")
	}
	key := []byte(secret)
	if strings.HasPrefix(secret, "whsec_") {
		if key, err = base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_")); err != nil {
			return err
		}
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("t:" + fields["t"] + ":"))
	mac.Write(body)
	if !hmac.Equal([]byte(hex.EncodeToString(mac.Sum(nil))), []byte(fields["v1"])) {
		return errors.New("bad X-Webhook-Signature")
	}
	return nil
}
