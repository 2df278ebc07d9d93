package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/protogate/protogate/config"
)

func newRolloutCmd() *cobra.Command {
	var admin, group, tokenFile, caFile string
	cmd := &cobra.Command{
		Use:   "rollout status|promote|abort",
		Short: "Follow and drive the canary rollout of new mapping versions (xds.rollout)",
		Long: `rollout asks the control plane's admin server about each group's rollout: status prints the
stable, candidate and rejected versions and which node holds which; promote serves the candidate to
every node at once; abort puts the canaries back on the stable version, without marking the
candidate rejected.`,
		Example: `  protogate rollout status
  protogate rollout promote --group edge --admin 127.0.0.1:19000 --token-file /etc/protogate-admin/token`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"status", "promote", "abort"},
		RunE: func(cmd *cobra.Command, args []string) error {
			base := admin
			if !strings.Contains(base, "://") {
				base = "http://" + base
			}
			var req *http.Request
			var err error
			switch args[0] {
			case "status":
				req, err = http.NewRequest("GET", base+"/rollout", nil)
			case "promote", "abort":
				if group == "" {
					return fmt.Errorf("rollout %s: say which group with --group", args[0])
				}
				req, err = http.NewRequest("POST", base+"/rollout/"+args[0]+"?group="+url.QueryEscape(group), nil)
			default:
				return fmt.Errorf("rollout %q: want status, promote or abort", args[0])
			}
			if err != nil {
				return err
			}
			if tokenFile != "" {
				tok, err := config.ReadToken(tokenFile)
				if err != nil {
					return err
				}
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			client := &http.Client{Timeout: 30 * time.Second}
			if caFile != "" {
				pem, err := os.ReadFile(caFile)
				if err != nil {
					return fmt.Errorf("--tls-ca: %w", err)
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					return fmt.Errorf("--tls-ca %s: no PEM certificate in it", caFile)
				}
				client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
			}
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("the admin server at %s: %w", admin, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
			if resp.StatusCode != http.StatusOK {
				var e struct {
					Error struct{ Code, Message string } `json:"error"`
				}
				if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
					return fmt.Errorf("rollout %s: %s", args[0], e.Error.Message)
				}
				return fmt.Errorf("rollout %s: the admin server answered %s: %s", args[0], resp.Status, bytes.TrimSpace(body))
			}
			var pretty bytes.Buffer
			if json.Indent(&pretty, body, "", "  ") == nil {
				body = pretty.Bytes()
			}
			fmt.Fprintln(cmd.OutOrStdout(), strings.TrimSpace(string(body)))
			return nil
		},
	}
	cmd.Flags().StringVar(&admin, "admin", "127.0.0.1:19000", "the control plane's admin address (http:// or https:// for TLS)")
	cmd.Flags().StringVar(&group, "group", "", "the node group to promote or abort")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "a file holding the admin bearer token (xds.security.admin.token_file)")
	cmd.Flags().StringVar(&caFile, "tls-ca", "", "PEM CA certificates the admin server's certificate must chain to (with an https:// --admin)")
	return cmd
}
