package github

// Permission levels of an installation access token.
const (
	levelRead  = "read"
	levelWrite = "write"
	levelAdmin = "admin"
)

// rank orders the levels: a token may be granted a level at most that of
// the installation.
var rank = map[string]int{levelRead: 1, levelWrite: 2, levelAdmin: 3}

// Permissions is the one table of the permissions an installation access
// token may ask for, with the levels each admits: the repository and
// organization permissions of GitHub's "app-permissions" object, the body
// parameter permissions of "Create an installation access token for an app"
// (POST /app/installations/{installation_id}/access_tokens,
// https://docs.github.com/en/rest/apps/apps#create-an-installation-access-token-for-an-app),
// cross-checked against go-github's InstallationPermissions, which is
// generated from the same description. Account (user) permissions are left
// out: an installation token acts for the installation, not for a user.
var Permissions = map[string][]string{
	// Repository permissions.
	"actions":                      {levelRead, levelWrite},
	"administration":               {levelRead, levelWrite},
	"attestations":                 {levelRead, levelWrite},
	"checks":                       {levelRead, levelWrite},
	"codespaces":                   {levelRead, levelWrite},
	"contents":                     {levelRead, levelWrite},
	"dependabot_secrets":           {levelRead, levelWrite},
	"deployments":                  {levelRead, levelWrite},
	"environments":                 {levelRead, levelWrite},
	"issues":                       {levelRead, levelWrite},
	"metadata":                     {levelRead, levelWrite},
	"packages":                     {levelRead, levelWrite},
	"pages":                        {levelRead, levelWrite},
	"pull_requests":                {levelRead, levelWrite},
	"repository_custom_properties": {levelRead, levelWrite},
	"repository_hooks":             {levelRead, levelWrite},
	"repository_projects":          {levelRead, levelWrite, levelAdmin},
	"secret_scanning_alerts":       {levelRead, levelWrite},
	"secrets":                      {levelRead, levelWrite},
	"security_events":              {levelRead, levelWrite},
	"single_file":                  {levelRead, levelWrite},
	"statuses":                     {levelRead, levelWrite},
	"vulnerability_alerts":         {levelRead, levelWrite},
	"workflows":                    {levelWrite},
	// Organization permissions.
	"members":                                     {levelRead, levelWrite},
	"organization_administration":                 {levelRead, levelWrite},
	"organization_announcement_banners":           {levelRead, levelWrite},
	"organization_copilot_seat_management":        {levelWrite},
	"organization_custom_org_roles":               {levelRead, levelWrite},
	"organization_custom_properties":              {levelRead, levelWrite, levelAdmin},
	"organization_custom_roles":                   {levelRead, levelWrite},
	"organization_events":                         {levelRead},
	"organization_hooks":                          {levelRead, levelWrite},
	"organization_packages":                       {levelRead, levelWrite},
	"organization_personal_access_token_requests": {levelRead, levelWrite},
	"organization_personal_access_tokens":         {levelRead, levelWrite},
	"organization_plan":                           {levelRead},
	"organization_projects":                       {levelRead, levelWrite, levelAdmin},
	"organization_secrets":                        {levelRead, levelWrite},
	"organization_self_hosted_runners":            {levelRead, levelWrite},
	"organization_user_blocking":                  {levelRead, levelWrite},
	"team_discussions":                            {levelRead, levelWrite},
}

// sensitive are the permissions lint flags whatever their level: they
// change who may do what (administration, organization_administration,
// members) or read and write secrets.
var sensitive = []string{"administration", "organization_administration", "members",
	"secrets", "organization_secrets", "dependabot_secrets"}
