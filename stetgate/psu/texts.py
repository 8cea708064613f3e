"""What the PSU pages say by default, in French (the default, a French bank's customers) and
English: the texts of the built-in theme.

One dictionary per language with the same keys (a unit test checks they match); templates read
``t.<key>``. A bank's theme (`stetgate.psu.theme`) overrides any of them and adds languages;
the English keys are the list of keys a theme may set, and their ``{placeholders}`` the only
ones it may use. Messages about failures never say which element was wrong (RTS (EU) 2018/389
Art. 4(3)(a)) and never whether a PSU id exists.
"""

from __future__ import annotations

from typing import Final

LANGUAGES: Final = ("fr", "en")

_FR: dict[str, str] = {
    "bank_name": "Banque stetgate",
    "language_name": "Français",
    "skip_to_content": "Aller au contenu",
    "secure_area": "Espace sécurisé",
    "time_left": "Temps restant avant expiration de la session :",
    "cancel": "Annuler et revenir à {client}",
    # identification
    "login_title": "Identification",
    "login_intro": "{client} demande à accéder à vos informations bancaires. "
    "Identifiez-vous auprès de votre banque pour continuer.",
    "login_intro_apps": "Identifiez-vous pour gérer les applications connectées à vos comptes.",
    "psu_id_label": "Identifiant client",
    "password_label": "Mot de passe",
    "login_submit": "Valider",
    "login_failed": "L'identification a échoué. Vérifiez vos informations et réessayez. Après "
    "plusieurs échecs, l'accès est bloqué pour un temps.",
    "last_attempt": "Attention\u00a0: après un nouvel échec, l'accès sera bloqué pendant "
    "{minutes}\u00a0minutes.",
    "never_share": "Votre banque ne vous demandera jamais vos codes par courriel ou téléphone.",
    # SCA
    "method_title": "Confirmez votre identité",
    "method_intro": "Choisissez comment confirmer votre identité.",
    "method_legend": "Méthode d'authentification",
    "method_totp": "Code à usage unique (application d'authentification)",
    "method_app": "Confirmation dans l'application bancaire",
    "method_submit": "Continuer",
    "otp_title": "Code de sécurité",
    "otp_intro": "Saisissez le code à 6 chiffres affiché par votre application d'authentification.",
    "otp_label": "Code à 6 chiffres",
    "otp_submit": "Valider le code",
    "sca_failed": "L'authentification a échoué. Réessayez.",
    "otp_failed": "L'authentification a échoué. Vérifiez le code affiché par votre "
    "application d'authentification et réessayez.",
    "otp_reused": "Ce code a déjà été utilisé. Attendez que votre application affiche le code "
    "suivant, puis saisissez-le.",
    "app_title": "Confirmez dans votre application bancaire",
    "app_intro": "Une demande de confirmation a été envoyée à votre application bancaire. "
    "Ouvrez-la et validez la demande portant la référence ci-dessous.",
    "app_reference": "Référence de la demande\u00a0:",
    "app_waiting": "En attente de votre confirmation…",
    "app_confirmed_button": "J'ai confirmé dans l'application",
    "app_not_yet": "La demande n'a pas encore été confirmée dans l'application.",
    # consent
    "consent_title": "Autorisation d'accès",
    "consent_intro": "{client} demande l'accès suivant à vos comptes :",
    "consent_tpp": "Prestataire",
    "consent_legal_name": "Raison sociale (certificat)",
    "consent_org_id": "Identifiant (certificat)",
    "consent_role": "Rôle réglementé",
    "consent_access": "Accès demandé",
    "consent_validity": "Durée",
    "consent_validity_value": "Jusqu'à {days} jours, sans nouvelle authentification forte.",
    "consent_revoke_hint": "Vous pourrez retirer cet accès à tout moment depuis la page "
    "{link} de votre banque. Vous pouvez l'ouvrir dès maintenant\u00a0: elle vous ramènera "
    "ensuite à cette autorisation.",
    "consent_signed_in": "Connecté en tant que {name}",
    "consent_accounts": "Comptes et cartes",
    "consent_accounts_all": "Tous vos comptes de paiement accessibles en ligne, et les cartes "
    "qui leur sont rattachées.",
    "consent_authorize": "Autoriser",
    "consent_refuse": "Refuser",
    "role_aisp": "Prestataire de services d'information sur les comptes (AISP)",
    "role_cbpii": "Prestataire émetteur d'instruments de paiement liés à une carte (CBPII)",
    "access_aisp": "La liste de vos comptes, leurs soldes et l'historique de vos opérations "
    "des 90 derniers jours.",
    "access_aisp_extended": "La liste de vos comptes, leurs soldes et l'historique complet de "
    "vos opérations.",
    "access_cbpii": "La confirmation de la disponibilité des fonds sur vos comptes, sans en "
    "connaître le solde.",
    # outcomes
    "blocked_title": "Accès bloqué",
    "blocked_body": "Trop de tentatives d'authentification ont échoué. Pour votre sécurité, "
    "l'accès est bloqué pendant {minutes} minutes.",
    "return_to": "Revenir à {client}",
    "help": "Besoin d'aide\u00a0? Contactez votre conseiller ou le service client de votre "
    "banque (numéro au dos de votre carte).",
    "expired_tpp_body": "Pour protéger vos comptes, votre session a expiré après une période "
    "d'inactivité. Aucun accès n'a été donné à {client}. Revenez à {client} pour recommencer.",
    "session_ends_in": "Sans action de votre part, la session expire dans {minutes}\u00a0min.",
    "session_warning": "Votre session expire dans moins d'une minute. Pour garder cette page, "
    "choisissez «\u00a0Prolonger la session\u00a0».",
    "session_continue": "Prolonger la session",
    "ended_title": "Session terminée",
    "ended_body": "Cette session d'authentification est terminée. Vous pouvez fermer cette page "
    "ou revenir au service d'origine.",
    "expired_title": "Session expirée",
    "expired_body": "Votre session a expiré après une période d'inactivité.",
    "sign_in_again": "Se connecter à nouveau",
    "no_session_title": "Session introuvable",
    "no_session_body": "Aucune session d'authentification n'est en cours dans ce navigateur, ou "
    "elle a expiré. Recommencez depuis le service qui vous a redirigé vers votre banque.",
    "busy_title": "Service momentanément indisponible",
    "busy_body": "La banque n'a pas pu traiter votre demande à temps. Rien n'a été modifié : "
    "réessayez dans quelques instants.{detail}",
    "bad_form_title": "Requête refusée",
    "bad_form_body": "Le formulaire envoyé n'est pas valide (jeton de sécurité absent ou "
    "incorrect). Rechargez la page et recommencez.",
    "bad_request_title": "Demande d'autorisation invalide",
    "bad_request_body": "Le service qui vous a redirigé vers votre banque a envoyé une demande "
    "invalide. Vous ne pouvez pas être renvoyé vers lui : fermez cette page et contactez ce "
    "service.{detail}",
    "technical_detail": "Détail technique, pour ce service\u00a0:",
    "refusal_missing": "le paramètre {parameter} est absent.",
    "refusal_malformed": "le paramètre {parameter} est mal encodé.",
    "refusal_repeated": "le paramètre {parameter} figure plusieurs fois.",
    "refusal_too_long": "le paramètre {parameter} est trop long.",
    "refusal_bad_characters": "le paramètre {parameter} contient des caractères non autorisés.",
    "refusal_unknown_client": "la valeur de {parameter} ne correspond à aucun prestataire "
    "enregistré auprès de la banque.",
    "refusal_not_registered": "l'adresse de retour ({parameter}) n'est pas enregistrée pour ce "
    "prestataire.",
    "no_method_body": "Aucune méthode d'authentification forte n'est activée pour ce compte. "
    "Contactez votre conseiller.",
    # connected apps
    "apps_title": "Applications connectées",
    "apps_intro": "Ces prestataires ont accès à vos comptes. Vous pouvez retirer un accès à "
    "tout moment ; le prestataire devra vous redemander votre autorisation.",
    "apps_none": "Aucune application n'a actuellement accès à vos comptes.",
    "apps_caption": "Accès en cours",
    "apps_name": "Prestataire",
    "apps_role": "Rôle",
    "apps_granted": "Accordé le",
    "apps_expires": "Expire le",
    "apps_last_used": "Dernière utilisation",
    "apps_never": "Jamais",
    "date_format": "%d/%m/%Y",
    "apps_action": "Action",
    "apps_revoke": "Retirer l'accès",
    "apps_revoked": "L'accès de {client} a été retiré.",
    "apps_confirm_title": "Retirer un accès",
    "apps_confirm_body": "{client} n'aura plus accès à vos comptes. Pour y accéder à nouveau, il "
    "devra vous redemander votre autorisation. Retirer l'accès de {client}\u00a0?",
    "apps_keep": "Garder l'accès",
    "apps_sign_out": "Se déconnecter",
    "apps_back_to_consent": "Revenir à l'autorisation demandée par {client}",
    "signed_out_title": "Déconnecté",
    "signed_out_body": "Vous êtes déconnecté.",
    # demo phone
    "phone_title": "Téléphone de démonstration",
    "phone_intro": "Bac à sable uniquement : cette page joue le rôle du téléphone du client "
    "(application d'authentification et application bancaire).",
    "phone_show": "Afficher le téléphone",
    "phone_code": "Code à usage unique actuel",
    "phone_code_left": "Valable encore {seconds} s.",
    "phone_refresh": "Actualiser",
    "phone_unknown": "Aucun client avec cet identifiant.",
    "phone_pending": "Demandes de confirmation en attente",
    "phone_none": "Aucune demande en attente.",
    "phone_request": "{client} — référence {reference}",
    "phone_request_apps": "Connexion à votre espace — référence {reference}",
    "phone_approve": "Confirmer",
    "phone_reject": "Refuser",
    "phone_done_approved": "Demande {reference} confirmée.",
    "phone_done_rejected": "Demande {reference} refusée.",
    "phone_done_missing": "Cette demande n'est plus en attente.",
}

_EN: dict[str, str] = {
    "bank_name": "stetgate Bank",
    "language_name": "English",
    "skip_to_content": "Skip to content",
    "secure_area": "Secure area",
    "time_left": "Time left before the session expires:",
    "cancel": "Cancel and return to {client}",
    "login_title": "Sign in",
    "login_intro": "{client} asks to access your banking information. "
    "Sign in to your bank to continue.",
    "login_intro_apps": "Sign in to manage the apps connected to your accounts.",
    "psu_id_label": "Customer ID",
    "password_label": "Password",
    "login_submit": "Sign in",
    "login_failed": "Sign-in failed. Check your details and try again. After several failed "
    "attempts, access is blocked for a while.",
    "last_attempt": "Warning: after one more failed attempt, access will be blocked for "
    "{minutes} minutes.",
    "never_share": "Your bank will never ask for your codes by email or phone.",
    "method_title": "Confirm it's you",
    "method_intro": "Choose how to confirm it is you.",
    "method_legend": "Authentication method",
    "method_totp": "One-time code (authenticator app)",
    "method_app": "Confirmation in the banking app",
    "method_submit": "Continue",
    "otp_title": "Security code",
    "otp_intro": "Enter the 6-digit code shown by your authenticator app.",
    "otp_label": "6-digit code",
    "otp_submit": "Confirm code",
    "sca_failed": "Authentication failed. Try again.",
    "otp_failed": "Authentication failed. Check the code shown by your authenticator app and "
    "try again.",
    "otp_reused": "This code has already been used. Wait for your app to show the next code, "
    "then enter it.",
    "app_title": "Confirm in your banking app",
    "app_intro": "A confirmation request was sent to your banking app. Open it and approve the "
    "request with the reference below.",
    "app_reference": "Request reference:",
    "app_waiting": "Waiting for your confirmation…",
    "app_confirmed_button": "I have confirmed in the app",
    "app_not_yet": "The request has not been confirmed in the app yet.",
    "consent_title": "Access authorization",
    "consent_intro": "{client} asks for the following access to your accounts:",
    "consent_tpp": "Provider",
    "consent_legal_name": "Legal name (certificate)",
    "consent_org_id": "Organization ID (certificate)",
    "consent_role": "Regulated role",
    "consent_access": "Access requested",
    "consent_validity": "Duration",
    "consent_validity_value": "Up to {days} days without a new strong authentication.",
    "consent_revoke_hint": "You can withdraw this access at any time from your bank's {link} "
    "page. You can open it now: it will bring you back to this authorization.",
    "consent_signed_in": "Signed in as {name}",
    "consent_accounts": "Accounts and cards",
    "consent_accounts_all": "All your payment accounts available online, and the cards linked "
    "to them.",
    "consent_authorize": "Authorize",
    "consent_refuse": "Refuse",
    "role_aisp": "Account information service provider (AISP)",
    "role_cbpii": "Card-based payment instrument issuer (CBPII)",
    "access_aisp": "The list of your accounts, their balances and your transactions of the "
    "last 90 days.",
    "access_aisp_extended": "The list of your accounts, their balances and your full "
    "transaction history.",
    "access_cbpii": "Confirmation that funds are available on your accounts, without seeing "
    "the balance.",
    "blocked_title": "Access blocked",
    "blocked_body": "Too many authentication attempts failed. For your security, access is "
    "blocked for {minutes} minutes.",
    "return_to": "Return to {client}",
    "help": "Need help? Contact your adviser or your bank's customer service (the number is on "
    "the back of your card).",
    "expired_tpp_body": "To protect your accounts, your session ended after a period without "
    "activity. {client} was given no access. Return to {client} to start again.",
    "session_ends_in": "Without any action, your session ends in {minutes} min.",
    "session_warning": "Your session ends in less than a minute. To keep this page, choose "
    "\u201cExtend the session\u201d.",
    "session_continue": "Extend the session",
    "ended_title": "Session ended",
    "ended_body": "This authentication session has ended. You can close this page or return to "
    "the service you came from.",
    "expired_title": "Session expired",
    "expired_body": "Your session expired after a period of inactivity.",
    "sign_in_again": "Sign in again",
    "no_session_title": "Session not found",
    "no_session_body": "No authentication session is in progress in this browser, or it has "
    "expired. Start again from the service that sent you to your bank.",
    "busy_title": "Service temporarily unavailable",
    "busy_body": "The bank could not handle your request in time. Nothing was changed: try "
    "again in a few moments.{detail}",
    "bad_form_title": "Request refused",
    "bad_form_body": "The submitted form is not valid (security token missing or wrong). "
    "Reload the page and try again.",
    "bad_request_title": "Invalid authorization request",
    "bad_request_body": "The service that sent you to your bank made an invalid request. You "
    "cannot be sent back to it: close this page and contact that service.{detail}",
    "technical_detail": "Technical detail, for that service:",
    "refusal_missing": "the {parameter} parameter is missing.",
    "refusal_malformed": "the {parameter} parameter is not properly encoded.",
    "refusal_repeated": "the {parameter} parameter appears more than once.",
    "refusal_too_long": "the {parameter} parameter is too long.",
    "refusal_bad_characters": "the {parameter} parameter has characters that are not allowed.",
    "refusal_unknown_client": "the {parameter} value matches no provider registered with the bank.",
    "refusal_not_registered": "the return address ({parameter}) is not registered for this "
    "provider.",
    "no_method_body": "No strong authentication method is enabled for this account. Contact "
    "your adviser.",
    "apps_title": "Connected apps",
    "apps_intro": "These providers can access your accounts. You can withdraw an access at any "
    "time; the provider will have to ask for your authorization again.",
    "apps_none": "No app currently has access to your accounts.",
    "apps_caption": "Current accesses",
    "apps_name": "Provider",
    "apps_role": "Role",
    "apps_granted": "Granted on",
    "apps_expires": "Expires on",
    "apps_last_used": "Last used",
    "apps_never": "Never",
    "date_format": "%d %b %Y",
    "apps_action": "Action",
    "apps_revoke": "Withdraw access",
    "apps_revoked": "The access of {client} was withdrawn.",
    "apps_confirm_title": "Withdraw an access",
    "apps_confirm_body": "{client} will no longer have access to your accounts. To get it back, "
    "it will have to ask for your authorization again. Withdraw the access of {client}?",
    "apps_keep": "Keep the access",
    "apps_sign_out": "Sign out",
    "apps_back_to_consent": "Back to the authorization requested by {client}",
    "signed_out_title": "Signed out",
    "signed_out_body": "You are signed out.",
    "phone_title": "Demo phone",
    "phone_intro": "Sandbox only: this page plays the customer's phone (authenticator app and "
    "banking app).",
    "phone_show": "Show the phone",
    "phone_code": "Current one-time code",
    "phone_code_left": "Valid for {seconds} more seconds.",
    "phone_refresh": "Refresh",
    "phone_unknown": "No customer with this ID.",
    "phone_pending": "Pending confirmation requests",
    "phone_none": "No pending request.",
    "phone_request": "{client} — reference {reference}",
    "phone_request_apps": "Sign-in to your online banking — reference {reference}",
    "phone_approve": "Approve",
    "phone_reject": "Reject",
    "phone_done_approved": "Request {reference} approved.",
    "phone_done_rejected": "Request {reference} rejected.",
    "phone_done_missing": "This request is no longer pending.",
}

TEXTS: Final[dict[str, dict[str, str]]] = {"fr": _FR, "en": _EN}
