// What each provider's credentials object of the contract becomes on the
// runner: the values to mask, the step outputs, the environment variables
// that the cloud's own tools read, and the files (under RUNNER_TEMP) to write.
// Pure: main.js does the I/O.

function required(creds, provider, ...names) {
  for (const n of names) {
    if (typeof creds[n] !== 'string' || creds[n] === '') {
      throw new Error(`the bridge's ${provider} credentials lack "${n}"`);
    }
  }
}

function str(v) {
  return v === undefined || v === null ? '' : String(v);
}

// plan returns {secrets, outputs, env, files} for one exchange response.
// files maps a file name (relative to the action's RUNNER_TEMP folder) to
// its content and to the outputs/env entries that name its path:
// {name: {content, output, env}}.
export function plan(provider, creds) {
  if (creds === null || typeof creds !== 'object') {
    throw new Error('the bridge answered without a credentials object');
  }
  switch (provider) {
    case 'aws': {
      required(creds, 'aws', 'access_key_id', 'secret_access_key', 'session_token');
      const region = str(creds.region);
      const env = {
        AWS_ACCESS_KEY_ID: creds.access_key_id,
        AWS_SECRET_ACCESS_KEY: creds.secret_access_key,
        AWS_SESSION_TOKEN: creds.session_token,
      };
      if (region) {
        env.AWS_REGION = region;
        env.AWS_DEFAULT_REGION = region;
      }
      return {
        secrets: [creds.access_key_id, creds.secret_access_key, creds.session_token],
        outputs: {
          'access-key-id': creds.access_key_id,
          'secret-access-key': creds.secret_access_key,
          'session-token': creds.session_token,
          region,
          expiration: str(creds.expiration),
        },
        env,
        files: {},
      };
    }
    case 'gcp':
      required(creds, 'gcp', 'access_token');
      return {
        secrets: [creds.access_token],
        outputs: {
          'access-token': creds.access_token,
          'token-type': str(creds.token_type),
          'service-account': str(creds.service_account),
          expiration: str(creds.expires_at),
        },
        // gcloud reads CLOUDSDK_AUTH_ACCESS_TOKEN_FILE (and recent versions
        // CLOUDSDK_AUTH_ACCESS_TOKEN); Google's Terraform provider and
        // client libraries GOOGLE_OAUTH_ACCESS_TOKEN.
        env: {
          CLOUDSDK_AUTH_ACCESS_TOKEN: creds.access_token,
          GOOGLE_OAUTH_ACCESS_TOKEN: creds.access_token,
        },
        files: {
          'gcp-access-token': { content: creds.access_token, output: 'access-token-file', env: 'CLOUDSDK_AUTH_ACCESS_TOKEN_FILE' },
        },
      };
    case 'azure':
      required(creds, 'azure', 'access_token');
      return {
        secrets: [creds.access_token],
        outputs: {
          'access-token': creds.access_token,
          'token-type': str(creds.token_type),
          'tenant-id': str(creds.tenant_id),
          'client-id': str(creds.client_id),
          scope: str(creds.scope),
          expiration: str(creds.expires_at),
        },
        env: {},
        files: {},
      };
    case 'jwt':
      required(creds, 'jwt', 'token');
      return {
        secrets: [creds.token],
        outputs: {
          token: creds.token,
          'token-type': str(creds.token_type),
          audience: str(creds.audience),
          expiration: str(creds.expires_at),
        },
        env: {},
        files: {
          token: { content: creds.token, output: 'token-file' },
        },
      };
    default:
      throw new Error(`the bridge answered with provider "${provider}", which this action does not know`);
  }
}
