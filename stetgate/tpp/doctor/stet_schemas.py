"""JSON schemas of STET v1.4.2 resources, written from the STET Part II resource definitions
and its generic error structure — independently of stetgate's own OpenAPI document, so a field
renamed on both sides would still be caught here. Unknown members are allowed (HAL documents
grow), required ones are those STET marks mandatory plus what a TPP needs to follow the flow.

TPP side (`stetgate tpp doctor` checks any bank's answers with them); stetgate's own tests
check the bank side with the same schemas."""

from __future__ import annotations

from typing import Any

import jsonschema

Schema = dict[str, Any]

RESOURCE_ID = r"^([a-zA-Z0-9 /\-?:\()\.,']{1,35})$"
HREF: Schema = {"type": "object", "required": ["href"], "properties": {"href": {"type": "string"}}}
AMOUNT: Schema = {
    "type": "object",
    "required": ["currency", "amount"],
    "properties": {
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "amount": {"type": "string", "pattern": r"^-?[0-9]{1,14}(\.[0-9]{1,3})?$"},
    },
}
ACCOUNT_ID: Schema = {
    "type": "object",
    "properties": {
        "iban": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$"},
        "other": {
            "type": "object",
            "required": ["identification", "schemeName"],
            "properties": {
                "identification": {"type": "string"},
                "schemeName": {"type": "string"},
                "issuer": {"type": "string"},
            },
        },
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
    },
    "oneOf": [{"required": ["iban"]}, {"required": ["other"]}],
}
DATE: Schema = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
DATE_TIME: Schema = {
    "type": "string",
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$",
}
BALANCE: Schema = {
    "type": "object",
    "required": ["name", "balanceAmount", "balanceType"],
    "properties": {
        "name": {"type": "string", "maxLength": 70},
        "balanceAmount": AMOUNT,
        "balanceType": {"enum": ["CLBD", "XPCD", "OTHR"]},
        "lastChangeDateTime": DATE_TIME,
        "referenceDate": DATE,
        "lastCommittedTransaction": {"type": "string"},
    },
}
ACCOUNT: Schema = {
    "type": "object",
    "required": [
        "resourceId",
        "bicFi",
        "accountId",
        "name",
        "usage",
        "cashAccountType",
        "currency",
    ],
    "properties": {
        "resourceId": {"type": "string", "pattern": RESOURCE_ID},
        "bicFi": {"type": "string", "pattern": "^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$"},
        "accountId": ACCOUNT_ID,
        "name": {"type": "string", "maxLength": 70},
        "details": {"type": "string"},
        "linkedAccount": {"type": "string", "pattern": RESOURCE_ID},
        "usage": {"enum": ["PRIV", "ORGA"]},
        "cashAccountType": {"enum": ["CACC", "CARD"]},
        "product": {"type": "string"},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "balances": {"type": "array", "items": BALANCE},
        "psuStatus": {"type": "string"},
        "_links": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"balances": HREF, "transactions": HREF},
        },
    },
}
PAGE_LINKS: Schema = {"self": HREF, "first": HREF, "prev": HREF, "next": HREF, "last": HREF}
ACCOUNTS: Schema = {
    "type": "object",
    "required": ["accounts", "_links"],
    "properties": {
        "accounts": {"type": "array", "items": ACCOUNT},
        "_links": {
            "type": "object",
            "required": ["self"],
            "properties": {**PAGE_LINKS, "endUserIdentity": HREF, "beneficiaries": HREF},
        },
    },
}
BALANCES: Schema = {
    "type": "object",
    "required": ["balances", "_links"],
    "properties": {
        "balances": {"type": "array", "minItems": 1, "items": BALANCE},
        "_links": {
            "type": "object",
            "required": ["self", "parent-list"],
            "properties": {"self": HREF, "parent-list": HREF, "transactions": HREF},
        },
    },
}
TRANSACTION: Schema = {
    "type": "object",
    "required": ["transactionAmount", "creditDebitIndicator", "status"],
    "properties": {
        "resourceId": {"type": "string"},
        "entryReference": {"type": "string", "maxLength": 40},
        "transactionAmount": {
            **AMOUNT,
            "properties": {
                **AMOUNT["properties"],
                "amount": {"type": "string", "pattern": r"^[0-9]{1,14}(\.[0-9]{1,3})?$"},
            },
        },
        "creditDebitIndicator": {"enum": ["CRDT", "DBIT"]},
        "status": {"enum": ["BOOK", "PDNG", "OTHR"]},
        "bookingDate": DATE,
        "valueDate": DATE,
        "transactionDate": DATE,
        "remittanceInformation": {"type": "array", "items": {"type": "string"}},
    },
    "if": {"properties": {"status": {"const": "BOOK"}}},
    "then": {"required": ["bookingDate"]},
}
TRANSACTIONS: Schema = {
    "type": "object",
    "required": ["transactions", "_links"],
    "properties": {
        "transactions": {"type": "array", "items": TRANSACTION},
        "_links": {
            "type": "object",
            "required": ["self", "parent-list"],
            "properties": {**PAGE_LINKS, "parent-list": HREF, "balances": HREF},
        },
    },
}
END_USER_IDENTITY: Schema = {
    "type": "object",
    "required": ["connectedPsu", "_links"],
    "properties": {
        "connectedPsu": {"type": "string", "minLength": 1},
        "_links": {"type": "object", "required": ["self"], "properties": {"self": HREF}},
    },
}
BENEFICIARIES: Schema = {
    "type": "object",
    "required": ["beneficiaries", "_links"],
    "properties": {
        "beneficiaries": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["creditor", "creditorAccount"],
                "properties": {
                    "creditorAgent": {
                        "type": "object",
                        "properties": {"bicFi": {"type": "string"}},
                    },
                    "creditor": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string"},
                            "postalAddress": {
                                "type": "object",
                                "properties": {
                                    "country": {"type": "string"},
                                    "addressLine": {"type": "array", "items": {"type": "string"}},
                                },
                            },
                        },
                    },
                    "creditorAccount": ACCOUNT_ID,
                },
            },
        },
        "_links": {"type": "object", "required": ["self"], "properties": PAGE_LINKS},
    },
}
FUNDS_CONFIRMATION: Schema = {
    "type": "object",
    "required": ["request", "result", "_links"],
    "properties": {
        "request": {
            "type": "object",
            "required": ["paymentCoverageRequestId", "instructedAmount", "accountId"],
            "properties": {
                "paymentCoverageRequestId": {"type": "string", "maxLength": 35},
                "payee": {"type": "string", "maxLength": 70},
                "instructedAmount": AMOUNT,
                "accountId": ACCOUNT_ID,
            },
        },
        "result": {"type": "boolean"},
        "_links": {"type": "object", "required": ["self"], "properties": {"self": HREF}},
    },
}
ERROR: Schema = {
    "type": "object",
    "required": ["status", "message"],
    "properties": {
        "timestamp": DATE_TIME,
        "status": {"type": "integer"},
        "error": {"type": "string", "maxLength": 140},
        "message": {"type": "string", "maxLength": 140},
        "path": {"type": "string", "maxLength": 140},
    },
}


def check(document: Any, schema: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError when ``document`` does not follow ``schema``."""
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)


def violation(document: Any, schema: dict[str, Any]) -> str | None:
    """The first way ``document`` breaks ``schema`` (where and what), None when it follows it."""
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "(document)"
    return f"{where}: {error.message}"[:300]
