"""The people who may sign in, in the Cognito user pool: the operator invites a customer's admins."""

from __future__ import annotations

import logging
import secrets
import string
from typing import Any

from botocore.exceptions import ClientError

from billing_core.domain.membership import DirectoryUser, InvitedUser
from billing_core.errors import BillingError
from billing_core.ports.storage import UserDirectory

log = logging.getLogger(__name__)


class UserDirectoryUnavailable(BillingError):
    """Cognito refused or could not be reached."""


class CognitoUserDirectory(UserDirectory):
    """Creates users by e-mail in the pool and puts them into the admin group.

    In AWS, Cognito mails the temporary password itself. On the local stack (moto sends no mail)
    the directory makes the temporary password and hands it back to be printed, never logged.
    """

    def __init__(
        self,
        client: Any,
        user_pool_id: str,
        admin_group: str,
        *,
        operator_group: str = "operator",
        hand_out_passwords: bool = False,
    ) -> None:
        self._client = client
        self._pool = user_pool_id
        self._group = admin_group
        self._operator_group = operator_group
        self._hand_out = hand_out_passwords

    @property
    def operator_group(self) -> str:
        return self._operator_group

    def find_user(self, email: str) -> DirectoryUser | None:
        """The user by e-mail (``AdminGetUser``: the pool signs in by e-mail; else ``ListUsers`` by the
        ``email`` attribute, for a user whose username is not their address), then their groups."""
        try:
            user = self._client.admin_get_user(UserPoolId=self._pool, Username=email)
            attributes = user.get("UserAttributes", [])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "UserNotFoundException":
                raise UserDirectoryUnavailable(f"Cognito refused: {_code(error)}") from None
            quoted = email.replace("\\", "\\\\").replace('"', '\\"')
            found = self._call(
                self._client.list_users, UserPoolId=self._pool, Filter=f'email = "{quoted}"', Limit=2
            ).get("Users", [])
            if not found:
                return None
            user, attributes = found[0], found[0].get("Attributes", [])
        sub = next((a["Value"] for a in attributes if a.get("Name") == "sub"), None)
        if not sub:
            raise UserDirectoryUnavailable("Cognito returned the user without a sub")
        groups: set[str] = set()
        token: str | None = None
        while True:
            request: dict[str, Any] = {"UserPoolId": self._pool, "Username": user["Username"]}
            if token:
                request["NextToken"] = token
            page = self._call(self._client.admin_list_groups_for_user, **request)
            groups.update(group["GroupName"] for group in page.get("Groups", []))
            token = page.get("NextToken")
            if not token:
                return DirectoryUser(sub=sub, username=user["Username"], groups=frozenset(groups))

    def invite_admin(self, email: str) -> InvitedUser:
        """Create (or find) the user ``email`` and add them to the admin group."""
        password = _temporary_password() if self._hand_out else None
        kwargs: dict[str, Any] = {
            "UserPoolId": self._pool,
            "Username": email,
            "UserAttributes": [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
        }
        if password is None:
            kwargs["DesiredDeliveryMediums"] = ["EMAIL"]
        else:
            kwargs.update(TemporaryPassword=password, MessageAction="SUPPRESS")
        try:
            user = self._client.admin_create_user(**kwargs)["User"]
            attributes, created = user.get("Attributes", []), True
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "UsernameExistsException":
                raise UserDirectoryUnavailable(f"Cognito refused the invitation: {_code(error)}") from None
            user = self._call(self._client.admin_get_user, UserPoolId=self._pool, Username=email)
            attributes, created, password = user.get("UserAttributes", []), False, None
        self._call(
            self._client.admin_add_user_to_group,
            UserPoolId=self._pool,
            Username=user["Username"],
            GroupName=self._group,
        )
        sub = next((a["Value"] for a in attributes if a.get("Name") == "sub"), None)
        if not sub:
            raise UserDirectoryUnavailable("Cognito returned the user without a sub")
        log.info("admin invited", extra={"sub": sub, "newUser": created})
        return InvitedUser(sub=sub, username=user["Username"], temporary_password=password, created=created)

    def _call(self, method: Any, **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except ClientError as error:
            raise UserDirectoryUnavailable(f"Cognito refused: {_code(error)}") from None


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "unknown"))


def _temporary_password() -> str:
    """A password Cognito's default policy accepts (upper, lower, digit, symbol, >= 8)."""
    body = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(16))
    return f"{body}Aa1!"


class CognitoUserInfo:
    """The signed-in user's own attributes, read with their access token (Cognito's GetUser).

    Access tokens carry no e-mail; this is where the Billing tab's first Stripe customer gets one.
    GetUser is authorized by the access token itself, so a forged or revoked token yields nothing.
    """

    def __init__(self, client: Any) -> None:
        self._client = client

    def email(self, access_token: str) -> str | None:
        """The user's verified e-mail address, or ``None`` (no e-mail, or Cognito refused)."""
        try:
            user = self._client.get_user(AccessToken=access_token)
        except ClientError as error:
            log.warning("Cognito GetUser refused", extra={"code": _code(error)})
            return None
        attributes = {a.get("Name"): a.get("Value") for a in user.get("UserAttributes", [])}
        if attributes.get("email_verified") not in ("true", True):
            return None
        email = attributes.get("email")
        return email if isinstance(email, str) and email else None
