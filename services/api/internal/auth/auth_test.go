package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		giveList string
		giveFile string
		want     []string // token names
	}{
		{name: "empty", want: nil},
		{name: "list", giveList: "read:aaa, admin:bbb", want: []string{"read#1", "admin#2"}},
		{name: "file", giveFile: "# comment\n\nadmin:ccc\n  read:ddd  \n", want: []string{"admin#1", "read#2"}},
		{name: "both", giveList: "read:aaa", giveFile: "admin:bbb", want: []string{"read#1", "admin#2"}},
		{name: "colon in token", giveList: "admin:a:b", want: []string{"admin#1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.giveList, tt.giveFile)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got.Len() != len(tt.want) {
				t.Fatalf("Len = %d, want %d", got.Len(), len(tt.want))
			}
			for i, n := range tt.want {
				if got.list[i].Name != n {
					t.Errorf("token %d name = %q, want %q", i, got.list[i].Name, n)
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		give string
	}{
		{name: "no role", give: "secret-token"},
		{name: "unknown role", give: "root:secret-token"},
		{name: "empty token", give: "admin:"},
		{name: "space in token", give: "admin:abc def"},
		{name: "duplicate", give: "admin:abc,read:abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.give, "")
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v, want ErrInvalidToken", err)
			}
			if strings.Contains(err.Error(), "secret-token") || strings.Contains(err.Error(), "abc") {
				t.Errorf("error %q leaks the token", err)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	toks, err := Parse("read:r-token,admin:a-token", "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		give     string
		wantOK   bool
		wantRole Role
	}{
		{give: "r-token", wantOK: true, wantRole: RoleRead},
		{give: "a-token", wantOK: true, wantRole: RoleAdmin},
		{give: "a-toke", wantOK: false},
		{give: "", wantOK: false},
		{give: "a-token-longer", wantOK: false},
	}
	for _, tt := range tests {
		got, ok := toks.Lookup(tt.give)
		if ok != tt.wantOK || got.Role != tt.wantRole {
			t.Errorf("Lookup(%q) = %v, %v; want %v, %v", tt.give, got.Role, ok, tt.wantRole, tt.wantOK)
		}
	}
}

func TestRoleAllows(t *testing.T) {
	tests := []struct {
		role   Role
		method string
		want   bool
	}{
		{RoleRead, "GET", true},
		{RoleRead, "HEAD", true},
		{RoleRead, "POST", false},
		{RoleRead, "DELETE", false},
		{RoleAdmin, "DELETE", true},
		{RoleAdmin, "POST", true},
		{Role("x"), "GET", false},
	}
	for _, tt := range tests {
		if got := tt.role.Allows(tt.method); got != tt.want {
			t.Errorf("%s.Allows(%s) = %v, want %v", tt.role, tt.method, got, tt.want)
		}
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		give   string
		want   string
		wantOK bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer  abc ", "abc", true},
		{"Basic abc", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := BearerToken(tt.give)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", tt.give, got, ok, tt.want, tt.wantOK)
		}
	}
}
