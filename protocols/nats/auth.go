package nats

import (
	"crypto/tls"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/protogate/protogate/config"
)

// authOptions reads credentials from files; secrets never sit in the
// mapping and are never logged.
func authOptions(u *config.NATSUpstream) ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case u.Credentials != "":
		if _, err := os.Stat(u.Credentials); err != nil {
			return nil, fmt.Errorf("credentials: %w", err)
		}
		opts = append(opts, nats.UserCredentials(u.Credentials))
	case u.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(u.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nkey_seed_file: %w", err)
		}
		opts = append(opts, o)
	case u.User != "":
		pw, err := readSecret(u.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("password_file: %w", err)
		}
		opts = append(opts, nats.UserInfo(u.User, pw))
	case u.TokenFile != "":
		tok, err := readSecret(u.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("token_file: %w", err)
		}
		opts = append(opts, nats.Token(tok))
	}
	if t := u.TLS; t != nil {
		// Secure first: RootCAs and ClientCert add to the config it sets.
		opts = append(opts, nats.Secure(&tls.Config{ServerName: t.ServerName, MinVersion: tls.VersionTLS12}))
		if t.CA != "" {
			opts = append(opts, nats.RootCAs(t.CA))
		}
		if t.Cert != "" {
			opts = append(opts, nats.ClientCert(t.Cert, t.Key))
		}
	}
	return opts, nil
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
