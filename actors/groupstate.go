package actors

import (
	"encoding/json"
	"fmt"
	"time"
)

// groupStateVersion is the version of the stored group state encoding; a
// coordinator refuses to decode a newer one rather than misread it.
const groupStateVersion = 1

// storedGroup is what a coordinator saves after each completed rebalance
// (and when a group becomes empty), as the opaque meta.Group.State: enough
// for the next coordinator of the group to keep its generation and let
// members carry on without rejoining.
type storedGroup struct {
	Version      int            `json:"v"`
	State        string         `json:"state"`
	Generation   int32          `json:"generation"`
	ProtocolType string         `json:"protocol_type,omitempty"`
	Protocol     string         `json:"protocol,omitempty"`
	Leader       string         `json:"leader,omitempty"`
	Members      []storedMember `json:"members,omitempty"`
}

// storedMember is one member of a stored group.
type storedMember struct {
	ID               string          `json:"id"`
	InstanceID       string          `json:"instance_id,omitempty"`
	ClientID         string          `json:"client_id,omitempty"`
	ClientHost       string          `json:"client_host,omitempty"`
	SessionTimeoutMs int64           `json:"session_timeout_ms"`
	RebalanceMs      int64           `json:"rebalance_timeout_ms"`
	Protocols        []GroupProtocol `json:"protocols"`
	Assignment       []byte          `json:"assignment,omitempty"`
}

func (s storedGroup) encode() ([]byte, error) {
	s.Version = groupStateVersion
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode group state: %w", err)
	}
	return b, nil
}

func decodeGroupState(b []byte) (storedGroup, error) {
	var s storedGroup
	if len(b) == 0 {
		return storedGroup{State: GroupEmpty}, nil
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return storedGroup{}, fmt.Errorf("decode group state: %w", err)
	}
	if s.Version > groupStateVersion {
		return storedGroup{}, fmt.Errorf("decode group state: version %d is newer than %d", s.Version, groupStateVersion)
	}
	if s.State != GroupStable || len(s.Members) == 0 {
		s.State, s.Members, s.Protocol, s.Leader = GroupEmpty, nil, "", ""
	}
	return s, nil
}

func (m storedMember) member() *groupMember {
	return &groupMember{
		id:               m.ID,
		instanceID:       m.InstanceID,
		clientID:         m.ClientID,
		clientHost:       m.ClientHost,
		sessionTimeout:   time.Duration(m.SessionTimeoutMs) * time.Millisecond,
		rebalanceTimeout: time.Duration(m.RebalanceMs) * time.Millisecond,
		protocols:        m.Protocols,
		assignment:       m.Assignment,
	}
}

func storeMember(m *groupMember) storedMember {
	return storedMember{
		ID:               m.id,
		InstanceID:       m.instanceID,
		ClientID:         m.clientID,
		ClientHost:       m.clientHost,
		SessionTimeoutMs: m.sessionTimeout.Milliseconds(),
		RebalanceMs:      m.rebalanceTimeout.Milliseconds(),
		Protocols:        m.protocols,
		Assignment:       m.assignment,
	}
}
