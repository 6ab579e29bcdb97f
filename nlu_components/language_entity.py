"""The reply language as an NLU entity, so that Rasa's own responses follow the borrower.

Rasa renders responses such as ``utter_greet`` with a variation per value of the ``language``
slot. The action server sets that slot only when a custom action runs, so a borrower who
switched language got Rasa's next response in the previous one. This component adds a
``language`` entity (``zh`` or ``en``) when the message is clearly written in one language
(``actions.language.from_text``: the same rule the actions use), and the slot's
``from_entity`` mapping in domain.yml sets the slot before any response is chosen. A message
that does not say (digits, emoji, a product name alone) adds nothing and the slot keeps the
conversation's language.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

from actions.language import from_text

ENTITY = "language"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class LanguageEntityExtractor(GraphComponent, EntityExtractorMixin):
    """Adds ``{"entity": "language", "value": "zh"|"en"}`` to messages that are clearly in
    one language (see the module docstring)."""

    @classmethod
    def create(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> LanguageEntityExtractor:
        return cls()

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            language = from_text(text)
            if language is None:
                continue
            entity = {"entity": ENTITY, "value": language, "start": 0, "end": len(text),
                      "confidence_entity": 1.0, "extractor": self.__class__.__name__}
            message.set(ENTITIES, [*(message.get(ENTITIES) or []), entity],
                        add_to_output=True)
        return messages
