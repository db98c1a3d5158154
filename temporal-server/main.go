// Command temporal-server is the Temporal server labflow runs: the upstream server (go.temporal.io/server, the
// same version and modules as `go install go.temporal.io/server/cmd/server`) with PostgreSQL persistence and an
// authorizer that gives each client certificate the roles temporal-config/server/roles.yaml names for its subject.
// A certificate the frontend's CA signed but the file does not name gets no role: every call but the health check
// is refused with PermissionDenied.
package main

import (
	"fmt"
	"os"
	"strings"
	_ "time/tzdata" // embed tzdata as a fallback, as the upstream server does

	"github.com/urfave/cli/v2"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/headers"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
	_ "go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql" // the only persistence labflow uses
	"go.temporal.io/server/temporal"
)

func main() {
	app := &cli.App{
		Name:      "temporal-server",
		Usage:     "Temporal server with certificate-subject authorization (labflow)",
		Version:   headers.ServerVersion,
		ArgsUsage: " ",
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:    "config-file",
				Usage:   "the server's static configuration (YAML); without it, the upstream image's environment variables (DB, POSTGRES_SEEDS, TEMPORAL_TLS_*...) configure it",
				EnvVars: []string{config.EnvKeyConfigFile},
			},
			&cli.StringFlag{
				Name:     "roles-file",
				Usage:    "roles by client-certificate subject (YAML, see temporal-config/server/roles.yaml)",
				EnvVars:  []string{"TEMPORAL_ROLES_FILE"},
				Required: true,
			},
		},
		Commands: []*cli.Command{
			{
				Name:  "check-roles",
				Usage: "read the roles file, print what it grants, and exit",
				Action: func(c *cli.Context) error {
					roles, err := LoadRoles(c.String("roles-file"))
					if err != nil {
						return cli.Exit(err.Error(), 1)
					}
					for _, line := range roles.Describe() {
						fmt.Println(line)
					}
					return nil
				},
			},
			{
				Name:   "start",
				Usage:  "start every Temporal service in this process",
				Action: start,
			},
		},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func start(c *cli.Context) error {
	cfg, err := loadConfig(c.String("config-file"))
	if err != nil {
		return cli.Exit(fmt.Sprintf("unable to load the configuration: %v", err), 1)
	}
	roles, err := LoadRoles(c.String("roles-file"))
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	if !cfg.Global.TLS.Frontend.Server.RequireClientAuth {
		return cli.Exit("the frontend must require client certificates (global.tls.frontend.server.requireClientAuth): roles are given by certificate subject", 1)
	}
	logger := log.NewZapLogger(log.BuildZapLogger(cfg.Log))
	for _, line := range roles.Describe() {
		logger.Info("Client certificate role.", tag.Value(line))
	}
	s, err := temporal.NewServer(
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithConfig(cfg),
		temporal.WithLogger(logger),
		temporal.InterruptOn(temporal.InterruptCh()),
		temporal.WithAuthorizer(authorization.NewDefaultAuthorizer()),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper {
			return NewCertificateClaimMapper(roles, logger)
		}),
	)
	if err != nil {
		return cli.Exit(fmt.Sprintf("unable to create the server: %v", err), 1)
	}
	if err := s.Start(); err != nil {
		return cli.Exit(fmt.Sprintf("unable to start the server: %v", err), 1)
	}
	return nil
}

// loadConfig reads the configuration file, or, without one, renders the server's embedded template from the
// environment as the upstream server image does. That template has no setting for the system worker's client
// certificate, which the roles file must recognise: TEMPORAL_TLS_SYSTEM_WORKER_CERT and _KEY name it (checked
// against TEMPORAL_TLS_SERVER_CA_CERT, for the name TEMPORAL_TLS_FRONTEND_SERVER_NAME); POSTGRES_PWD_FILE may stand
// for POSTGRES_PWD.
func loadConfig(file string) (*config.Config, error) {
	if file != "" {
		return config.Load(config.WithConfigFile(file))
	}
	// Secrets as files (Docker secrets): the template reads the password from POSTGRES_PWD only.
	if file := os.Getenv("POSTGRES_PWD_FILE"); file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("POSTGRES_PWD_FILE: %w", err)
		}
		if err := os.Setenv("POSTGRES_PWD", strings.TrimRight(string(raw), "\r\n")); err != nil {
			return nil, err
		}
	}
	cfg, err := config.Load(config.WithEmbedded())
	if err != nil {
		return nil, err
	}
	if cert := os.Getenv("TEMPORAL_TLS_SYSTEM_WORKER_CERT"); cert != "" {
		cfg.Global.TLS.SystemWorker = config.WorkerTLS{
			CertFile: cert,
			KeyFile:  os.Getenv("TEMPORAL_TLS_SYSTEM_WORKER_KEY"),
			Client: config.ClientTLS{
				ServerName:  os.Getenv("TEMPORAL_TLS_FRONTEND_SERVER_NAME"),
				RootCAFiles: []string{os.Getenv("TEMPORAL_TLS_SERVER_CA_CERT")},
			},
		}
	}
	return cfg, nil
}
