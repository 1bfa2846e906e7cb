package proto

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// CommandKind names a node command (its external tag on the wire).
type CommandKind string

// Command kinds. Pot commands carry a pot id; unit commands carry nothing;
// InstallPot carries an InstallPot payload.
const (
	CmdInstallPot       CommandKind = "InstallPot"
	CmdDeployPot        CommandKind = "DeployPot"
	CmdStopPot          CommandKind = "StopPot"
	CmdRestartPot       CommandKind = "RestartPot"
	CmdGetPotStatus     CommandKind = "GetPotStatus"
	CmdGetPotLogs       CommandKind = "GetPotLogs"
	CmdGetPotMetrics    CommandKind = "GetPotMetrics"
	CmdGetPotInfo       CommandKind = "GetPotInfo"
	CmdRestart          CommandKind = "Restart"
	CmdUpdateConfig     CommandKind = "UpdateConfig"
	CmdGetInstalledPots CommandKind = "GetInstalledPots"
)

// IsPotCommand reports whether k takes a pot id as its only payload.
func (k CommandKind) IsPotCommand() bool {
	switch k {
	case CmdDeployPot, CmdStopPot, CmdRestartPot, CmdGetPotStatus, CmdGetPotLogs, CmdGetPotMetrics, CmdGetPotInfo:
		return true
	}
	return false
}

// IsUnit reports whether k carries no payload.
func (k CommandKind) IsUnit() bool {
	return k == CmdRestart || k == CmdUpdateConfig || k == CmdGetInstalledPots
}

// Valid reports whether k is a known command.
func (k CommandKind) Valid() bool { return k == CmdInstallPot || k.IsPotCommand() || k.IsUnit() }

// InstallPot is the payload of the InstallPot command.
type InstallPot struct {
	PotID        string            `json:"pot_id"`
	HoneypotType string            `json:"honeypot_type"`
	GitURL       *string           `json:"git_url"`
	GitBranch    *string           `json:"git_branch"`
	Config       map[string]string `json:"config"`
	AutoStart    bool              `json:"auto_start"`
}

// Command is a node command. It marshals to the form the deployed Go node
// parses: {"InstallPot": {...}}, {"StopPot": "id"}, {"Restart": {}}. It
// unmarshals from those and also from a bare string for unit commands
// ("Restart") and a null unit payload ({"Restart": null}).
type Command struct {
	Kind CommandKind
	// PotID is the target pot: the payload of a pot command, or
	// Install.PotID for InstallPot. Empty for unit commands.
	PotID string
	// Install is set for InstallPot only.
	Install *InstallPot
}

// Validate returns an error wrapping ErrInvalidCommand when c cannot be sent.
func (c Command) Validate() error {
	switch {
	case !c.Kind.Valid():
		return fmt.Errorf("%w: unknown command %q", ErrInvalidCommand, string(c.Kind))
	case c.Kind == CmdInstallPot:
		if c.Install == nil {
			return fmt.Errorf("%w: InstallPot needs a payload", ErrInvalidCommand)
		}
		if c.Install.PotID == "" {
			return fmt.Errorf("%w: InstallPot needs a non-empty pot_id", ErrInvalidCommand)
		}
		if c.Install.HoneypotType == "" {
			return fmt.Errorf("%w: InstallPot needs a non-empty honeypot_type", ErrInvalidCommand)
		}
	case c.Kind.IsPotCommand():
		if c.PotID == "" {
			return fmt.Errorf("%w: %s needs a non-empty pot id", ErrInvalidCommand, c.Kind)
		}
	}
	return nil
}

// MarshalJSON writes the wire form. It does not validate.
func (c Command) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{`)
	k, _ := json.Marshal(string(c.Kind))
	b.Write(k)
	b.WriteString(`:`)
	switch {
	case c.Kind == CmdInstallPot:
		in := InstallPot{}
		if c.Install != nil {
			in = *c.Install
		}
		if in.Config == nil {
			in.Config = map[string]string{}
		}
		p, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		b.Write(p)
	case c.Kind.IsPotCommand():
		p, _ := json.Marshal(c.PotID)
		b.Write(p)
	default:
		b.WriteString(`{}`)
	}
	b.WriteString(`}`)
	return b.Bytes(), nil
}

// UnmarshalJSON reads any accepted form and validates the result: an
// unknown variant, an empty pot id or a missing honeypot_type is an error
// wrapping ErrInvalidCommand.
func (c *Command) UnmarshalJSON(data []byte) error {
	tag, payload, err := splitVariant(data)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidCommand, err)
	}
	cmd := Command{Kind: CommandKind(tag)}
	switch {
	case cmd.Kind == CmdInstallPot:
		if payload == nil || isNull(payload) {
			return fmt.Errorf("%w: InstallPot needs a payload", ErrInvalidCommand)
		}
		var in struct {
			PotID        *string           `json:"pot_id"`
			HoneypotType *string           `json:"honeypot_type"`
			GitURL       *string           `json:"git_url"`
			GitBranch    *string           `json:"git_branch"`
			Config       map[string]string `json:"config"`
			AutoStart    bool              `json:"auto_start"`
		}
		if err := json.Unmarshal(payload, &in); err != nil {
			return fmt.Errorf("%w: InstallPot: %w", ErrInvalidCommand, jsonErr(err))
		}
		if in.PotID == nil {
			return fmt.Errorf("%w: InstallPot: %w: pot_id", ErrInvalidCommand, ErrMissingField)
		}
		if in.HoneypotType == nil {
			return fmt.Errorf("%w: InstallPot: %w: honeypot_type", ErrInvalidCommand, ErrMissingField)
		}
		cmd.Install = &InstallPot{PotID: *in.PotID, HoneypotType: *in.HoneypotType, GitURL: in.GitURL,
			GitBranch: in.GitBranch, Config: in.Config, AutoStart: in.AutoStart}
		cmd.PotID = *in.PotID
	case cmd.Kind.IsPotCommand():
		if payload == nil || payload[0] != '"' {
			return fmt.Errorf("%w: %s takes the pot id as a string", ErrInvalidCommand, tag)
		}
		if err := json.Unmarshal(payload, &cmd.PotID); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalidCommand, tag, jsonErr(err))
		}
	case cmd.Kind.IsUnit():
		if payload != nil && !isNull(payload) && !isEmptyObject(payload) {
			return fmt.Errorf("%w: %s takes no payload", ErrInvalidCommand, tag)
		}
	default:
		return fmt.Errorf("%w: %w: %q", ErrInvalidCommand, ErrUnknownVariant, tag)
	}
	if err := cmd.Validate(); err != nil {
		return err
	}
	*c = cmd
	return nil
}

// ParseCommand decodes a command in any accepted form and validates it.
func ParseCommand(data []byte) (Command, error) {
	if err := checkLimits(data, DefaultMaxDepth); err != nil {
		return Command{}, fmt.Errorf("%w: %w", ErrInvalidCommand, err)
	}
	var c Command
	if err := c.UnmarshalJSON(data); err != nil {
		return Command{}, err
	}
	return c, nil
}
