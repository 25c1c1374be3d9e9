package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLS is the listener's TLS (the tls section). With Cert and Key set the
// registry API is served over HTTPS only; the files are read again when
// they change.
type TLS struct {
	// Cert and Key are the PEM files of the certificate chain and its key
	// (tls.cert, --tls-cert; tls.key, --tls-key).
	Cert, Key string
	// ClientCA is a PEM file of the authorities whose client certificates
	// are accepted (tls.client_ca): with it, every client must present
	// one. Empty: none is asked for.
	ClientCA string
}

// Enabled tells whether the listener serves TLS.
func (t TLS) Enabled() bool { return t.Cert != "" }

// fileTLS is the tls section.
type fileTLS struct {
	Cert     *string `yaml:"cert"`
	Key      *string `yaml:"key"`
	ClientCA *string `yaml:"client_ca"`
}

// apply sets the tls section on t; it is checked with the flags applied
// (checkTLS).
func (ft *fileTLS) apply(t *TLS) {
	if ft.Cert != nil {
		t.Cert = *ft.Cert
	}
	if ft.Key != nil {
		t.Key = *ft.Key
	}
	if ft.ClientCA != nil {
		t.ClientCA = *ft.ClientCA
	}
}

// checkTLS checks that the certificate and key come together and load,
// and that the client CA file holds certificates, naming the flag or key
// that set each.
func checkTLS(t TLS, f *flags) error {
	certKey, keyKey := "tls.cert", "tls.key"
	if f.tlsCert != nil {
		certKey = "--tls-cert"
	}
	if f.tlsKey != nil {
		keyKey = "--tls-key"
	}
	switch {
	case t.Cert == "" && t.Key == "" && t.ClientCA == "":
		return nil
	case t.Cert == "":
		if t.Key != "" {
			return fmt.Errorf("%s: set without %s", keyKey, certKey)
		}
		return errors.New("tls.client_ca: set without tls.cert and tls.key: client certificates need TLS")
	case t.Key == "":
		return fmt.Errorf("%s: set without %s", certKey, keyKey)
	}
	if _, err := tls.LoadX509KeyPair(t.Cert, t.Key); err != nil {
		return fmt.Errorf("%s, %s: %w", certKey, keyKey, err)
	}
	if t.ClientCA != "" {
		if _, err := LoadCertPool(t.ClientCA); err != nil {
			return fmt.Errorf("tls.client_ca: %w", err)
		}
	}
	return nil
}

// LoadCertPool reads a PEM file of certificates into a pool.
func LoadCertPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}
