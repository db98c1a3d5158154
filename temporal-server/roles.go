package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
	"gopkg.in/yaml.v3"
)

// RolesFile is temporal-config/server/roles.yaml: which client certificate may do what.
type RolesFile struct {
	Subjects []SubjectRoles `yaml:"subjects"`
}

// SubjectRoles grants roles to the certificates whose subject has this common name (and, when given, this
// organization). System roles apply to every namespace and to cluster-wide calls; namespace roles to that
// namespace only. Roles: worker, reader, writer, admin (each includes the ones before it in Temporal's default
// authorizer, except that worker alone may only poll).
type SubjectRoles struct {
	CommonName   string              `yaml:"commonName"`
	Organization string              `yaml:"organization"`
	System       []string            `yaml:"system"`
	Namespaces   map[string][]string `yaml:"namespaces"`
}

type grant struct {
	subject    SubjectRoles
	system     authorization.Role
	namespaces map[string]authorization.Role
}

// Roles is the parsed, checked file.
type Roles struct {
	grants []grant
}

var roleNames = map[string]authorization.Role{
	"worker": authorization.RoleWorker,
	"reader": authorization.RoleReader,
	"writer": authorization.RoleWriter,
	"admin":  authorization.RoleAdmin,
}

func parseRoles(names []string, where string) (authorization.Role, error) {
	var role authorization.Role
	for _, name := range names {
		r, ok := roleNames[strings.ToLower(strings.TrimSpace(name))]
		if !ok {
			return 0, fmt.Errorf("%s: unknown role %q (worker, reader, writer or admin)", where, name)
		}
		role |= r
	}
	return role, nil
}

// LoadRoles reads and checks a roles file. Unknown keys, unknown roles, a subject without a common name and a
// subject named twice are errors: a typo must not silently take a role away or give one.
func LoadRoles(path string) (*Roles, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("roles file: %w", err)
	}
	var file RolesFile
	decoder := yaml.NewDecoder(bytes.NewReader(raw))
	decoder.KnownFields(true)
	if err := decoder.Decode(&file); err != nil {
		return nil, fmt.Errorf("roles file %s: %w", path, err)
	}
	if len(file.Subjects) == 0 {
		return nil, fmt.Errorf("roles file %s names no subject", path)
	}
	roles := &Roles{}
	seen := map[string]bool{}
	for i, s := range file.Subjects {
		where := fmt.Sprintf("roles file %s, subject %d", path, i+1)
		if strings.TrimSpace(s.CommonName) == "" {
			return nil, fmt.Errorf("%s: commonName is required", where)
		}
		key := s.CommonName + "\x00" + s.Organization
		if seen[key] {
			return nil, fmt.Errorf("%s: CN=%s is named twice", where, s.CommonName)
		}
		seen[key] = true
		g := grant{subject: s, namespaces: map[string]authorization.Role{}}
		if g.system, err = parseRoles(s.System, where); err != nil {
			return nil, err
		}
		for ns, names := range s.Namespaces {
			if ns == "" {
				return nil, fmt.Errorf("%s: an empty namespace name", where)
			}
			if g.namespaces[ns], err = parseRoles(names, where); err != nil {
				return nil, err
			}
		}
		roles.grants = append(roles.grants, g)
	}
	return roles, nil
}

func (g grant) matches(commonName string, organizations []string) bool {
	if g.subject.CommonName != commonName {
		return false
	}
	return g.subject.Organization == "" || slices.Contains(organizations, g.subject.Organization)
}

func describeRole(role authorization.Role) string {
	var names []string
	for _, name := range []string{"worker", "reader", "writer", "admin"} {
		if role&roleNames[name] != 0 {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "+")
}

// Describe says, one line per subject, what the file grants.
func (r *Roles) Describe() []string {
	var lines []string
	for _, g := range r.grants {
		subject := "CN=" + g.subject.CommonName
		if g.subject.Organization != "" {
			subject += ",O=" + g.subject.Organization
		}
		parts := []string{"system " + describeRole(g.system)}
		names := make([]string, 0, len(g.namespaces))
		for ns := range g.namespaces {
			names = append(names, ns)
		}
		sort.Strings(names)
		for _, ns := range names {
			parts = append(parts, fmt.Sprintf("namespace %s %s", ns, describeRole(g.namespaces[ns])))
		}
		lines = append(lines, subject+": "+strings.Join(parts, ", "))
	}
	return lines
}

// certificateClaimMapper maps the subject of the client certificate the TLS handshake verified (the interceptor
// takes it from the verified chain only) to the roles the file grants it. A bearer token is not read: identity is
// the certificate.
type certificateClaimMapper struct {
	roles  *Roles
	logger log.Logger
}

var _ authorization.ClaimMapper = (*certificateClaimMapper)(nil)

// NewCertificateClaimMapper returns the claim mapper the server is built with.
func NewCertificateClaimMapper(roles *Roles, logger log.Logger) authorization.ClaimMapper {
	return &certificateClaimMapper{roles: roles, logger: logger}
}

var errNoCertificate = errors.New("no verified client certificate")

func (m *certificateClaimMapper) GetClaims(info *authorization.AuthInfo) (*authorization.Claims, error) {
	if info == nil || info.TLSSubject == nil {
		// Without a verified certificate there is no identity; the frontend requires one, so this is a request
		// that carried only a bearer token over a connection the handshake did not authenticate.
		return nil, errNoCertificate
	}
	subject := info.TLSSubject
	claims := &authorization.Claims{
		Subject:    subject.String(),
		AuthType:   "mtls",
		Namespaces: map[string]authorization.Role{},
	}
	matched := false
	for _, g := range m.roles.grants {
		if !g.matches(subject.CommonName, subject.Organization) {
			continue
		}
		matched = true
		claims.System |= g.system
		for ns, role := range g.namespaces {
			claims.Namespaces[ns] |= role
		}
	}
	if !matched {
		m.logger.Warn("Client certificate has no role.", tag.Value(subject.String()))
	}
	return claims, nil
}
